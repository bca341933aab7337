# ticketwarden: the webhook sidecar (default command) or the sync job (`sync`), one image.
#   docker build -t ticketwarden .
#   docker run -p 8080:8080 -v $PWD/ticketwarden.toml:/etc/ticketwarden/ticketwarden.toml:ro \
#     -e TICKETWARDEN_DESK_ZENDESK_EMAIL=... ticketwarden
# See docs/deploy.md.

# --- build: wheels of ticketwarden and everything it needs (PostgreSQL driver included) ---------
FROM python:3.11-slim AS build
WORKDIR /src
COPY pyproject.toml README.md ./
COPY ticketwarden ./ticketwarden
COPY examples ./examples
RUN pip wheel --no-cache-dir --wheel-dir /wheels '.[postgres]'

# --- run: slim, no compilers, not root -----------------------------------------------------------
FROM python:3.11-slim
RUN useradd --system --uid 10001 --user-group --home-dir /var/lib/ticketwarden --create-home \
        ticketwarden \
    && mkdir -p /etc/ticketwarden
COPY --from=build /wheels /tmp/wheels
RUN pip install --no-cache-dir --no-index --find-links=/tmp/wheels 'ticketwarden[postgres]' \
    && rm -rf /tmp/wheels
USER 10001:10001
WORKDIR /var/lib/ticketwarden
ENV PYTHONUNBUFFERED=1 \
    TICKETWARDEN_CONFIG=/etc/ticketwarden/ticketwarden.toml \
    TICKETWARDEN_DATA_DIR=/var/lib/ticketwarden
EXPOSE 8080
# liveness only: readiness (store reachable, schema current) is /readyz, for the orchestrator
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import sys, urllib.request; sys.exit(urllib.request.urlopen('http://127.0.0.1:8080/healthz', timeout=4).status != 200)"]
# SIGTERM stops accepting, finishes in-flight requests and inbox events, exits 0
STOPSIGNAL SIGTERM
ENTRYPOINT ["ticketwarden"]
CMD ["serve", "--host", "0.0.0.0", "--port", "8080"]

"""The store's Alembic migrations, shipped inside the package.

:class:`ticketwarden.core.store.Store` runs them programmatically (``Store.upgrade``, which
``ticketwarden db upgrade`` calls); no ``alembic.ini`` is needed. Developers add a revision
with ``alembic -x url=sqlite:///scratch.db revision -m "..."`` and a throwaway config whose
``script_location`` is this directory.
"""

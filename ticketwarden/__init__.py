"""ticketwarden — enforces a vendor's technical-support policy inside the helpdesks it already uses.

The public surface for plugin authors is small: :data:`hookimpl` marks hook implementations
(see :mod:`ticketwarden.hooks` for the contract), and the normalized model and actions live in
:mod:`ticketwarden.core.model` and :mod:`ticketwarden.core.actions`.
"""

from ticketwarden.hooks import hookimpl

__all__ = ["__version__", "hookimpl"]

__version__ = "0.1.0"

"""How a lifecycle operation reaches its index: located late, and a missing index reads as empty."""

from __future__ import annotations

from collections.abc import Callable

from ..index import IndexTarget, index_exists

#: Where an operation's index is, asked for only once the operation has checked its arguments (and,
#: for forget, cancelled pending writes): on the multi-tenant store, locating an index vends the
#: tenant's credentials, an STS call that can fail, so a malformed argument is refused without one
#: and a forget is recorded even when the tenant's credentials cannot be had.
IndexLocator = Callable[[], IndexTarget]


def existing_target(locate: IndexLocator) -> IndexTarget | None:
    """The located target if its index exists, else ``None`` (reads of a missing index find nothing).

    Unlike writes, reads do not check the index dimension against the embedder, so an index
    written with another model can still be listed, exported and forgotten.
    """
    target = locate()
    return target if index_exists(target) else None

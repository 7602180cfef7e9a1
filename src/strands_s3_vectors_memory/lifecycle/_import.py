"""Importing a JSON Lines export into an index: keys and metadata kept, vectors reused or re-embedded."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import TYPE_CHECKING

from ..index import WRITE_BATCH, IndexTarget, put_vectors
from ._results import MAX_REPORTED_REJECTIONS, ImportRejection, ImportReport
from ._scan import ProgressCallback, Tally
from ._target import IndexLocator
from ._transfer import ImportRecord, foreign_key_reason, parse_import_line

if TYPE_CHECKING:
    from ..embeddings import Embedder

#: Embeds texts as documents, checked to be of the embedder's dimension (the store's ``embed``).
EmbedDocuments = Callable[[Sequence[str]], list[list[float]]]


def import_memories(
    locate: IndexLocator,
    fp: Iterable[str],
    *,
    embedder: Embedder,
    embed: EmbedDocuments,
    keep_vectors: bool = False,
    verify_keys: bool = False,
    progress: ProgressCallback | None = None,
) -> ImportReport:
    """Write the records of ``fp`` into the located index (which must be ready for writes).

    Content is re-embedded with ``embed``, unless ``keep_vectors`` and the record carries a vector
    of ``embedder``'s dimension (and, when recorded, of its model). Records are validated and
    written in batches of :data:`WRITE_BATCH`; re-running an import is idempotent, since keys are
    kept. Raises ``ValueError`` naming the line of a malformed record. With ``verify_keys``, a
    record whose key is not the one the store makes for its own metadata (in this index's tenant)
    is refused and counted, never written.
    """
    target = locate()
    tally = Tally(progress)
    totals = {"imported": 0, "re_embedded": 0, "kept": 0}
    rejections: list[ImportRejection] = []
    rejected = 0
    batch: list[ImportRecord] = []
    for number, line in enumerate(fp, start=1):
        if not line.strip():
            continue
        record = parse_import_line(line, number)
        reason = foreign_key_reason(record, target.tenant_id) if verify_keys else None
        if reason is not None:
            rejected += 1
            if len(rejections) < MAX_REPORTED_REJECTIONS:
                rejections.append(ImportRejection(number, record.key, reason))
            continue
        batch.append(record)
        if len(batch) >= WRITE_BATCH:
            _import_batch(target, batch, keep_vectors, embedder, embed, totals, tally)
            batch = []
    if batch:
        _import_batch(target, batch, keep_vectors, embedder, embed, totals, tally)
    return ImportReport(
        imported=totals["imported"], re_embedded=totals["re_embedded"], kept_vectors=totals["kept"],
        rejected=rejected, rejections=tuple(rejections),
    )


def _reusable(record: ImportRecord, embedder: Embedder) -> bool:
    return (
        record.vector is not None
        and len(record.vector) == embedder.dimension
        and record.model in (None, embedder.model_id)
    )


def _import_batch(
    target: IndexTarget,
    batch: Sequence[ImportRecord],
    keep_vectors: bool,
    embedder: Embedder,
    embed: EmbedDocuments,
    totals: dict[str, int],
    tally: Tally,
) -> None:
    keep = [keep_vectors and _reusable(r, embedder) for r in batch]
    fresh = iter(embed([r.content for r, k in zip(batch, keep, strict=True) if not k]))
    vectors = [r.vector if k and r.vector is not None else next(fresh) for r, k in zip(batch, keep, strict=True)]
    unique = {r.key: (r, v) for r, v in zip(batch, vectors, strict=True)}  # a repeated key: last one wins
    put_vectors(target, [{"key": k, "data": {"float32": v}, "metadata": r.metadata} for k, (r, v) in unique.items()])
    kept = sum(keep)
    totals["imported"] += len(batch)
    totals["kept"] += kept
    totals["re_embedded"] += len(batch) - kept
    tally.add(len(batch), len(batch))

"""``python -m strands_s3_vectors_memory.cli``: the same as the ``s3-vectors-memory`` command."""

from . import main

main()

"""Time per report body of the folder blob store's put (what each ingest writes), in rounds.

Each round puts ``--puts`` bodies of 85 KB (a service report's gzipped size) under fresh keys
spread over the store's 256 folders, into a store whose folders exist already (as on a server
that has run a while); a round's figure is its mean time per put. Run it from two trees in turn
(``PYTHONPATH``) to compare them.

    python benchmarks/server/blob_put.py [--puts 500] [--rounds 5]
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
import uuid
from pathlib import Path

from greenflame.server.blobs import FolderBlobStore

BODY_BYTES = 85 * 1024


def one_round(store: FolderBlobStore, body: bytes, puts: int) -> float:
    """Mean milliseconds per put of ``puts`` new keys."""
    keys = [uuid.uuid4().hex for _ in range(puts)]
    started = time.perf_counter()
    for key in keys:
        store.put(f"profiles/{key[:2]}/{key}.json.gz", body)
    return (time.perf_counter() - started) * 1000 / puts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--puts", type=int, default=500)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    body = os.urandom(BODY_BYTES)
    with tempfile.TemporaryDirectory() as folder:
        store = FolderBlobStore(Path(folder))
        for prefix in range(256):  # every folder made once, as a running server has them
            store.put(f"profiles/{prefix:02x}/warm.json.gz", b"")
        figures = [one_round(store, body, args.puts) for _ in range(args.rounds)]
    spread = f"{min(figures):.3f}-{max(figures):.3f}"
    print(f"put of {BODY_BYTES} bytes: median {statistics.median(figures):.3f} ms ({spread}) over {args.rounds} rounds")


if __name__ == "__main__":
    main()

"""`lorag ingest`: send .md/.rst/.adoc/.txt/.html files to a running server's index,
with progress."""

from __future__ import annotations

import sys
from collections import Counter

import httpx
from tqdm import tqdm

from retrieval.files import SUFFIXES, DocumentFileError, file_document, find_files


__all__ = ["ingest_paths"]


def _fail(response: httpx.Response) -> int:
    try:
        message = response.json()["error"]["message"]
    except Exception:
        message = response.text[:500]
    print(f"lorag ingest: server answered {response.status_code}: {message}", file=sys.stderr)
    return 1


def ingest_paths(paths: list[str], *, index: str, url: str, create: bool,
                 batch_size: int) -> int:
    try:
        files = find_files(paths)
    except DocumentFileError as err:
        print(f"lorag ingest: {err}", file=sys.stderr)
        return 1
    if not files:
        print(f"lorag ingest: no {SUFFIXES} files found", file=sys.stderr)
        return 1
    statuses: Counter[str] = Counter()
    from serving.auth import client_headers

    with httpx.Client(base_url=url.rstrip("/"), timeout=600, headers=client_headers()) as client:
        if create:
            r = client.post("/v1/indexes", json={"name": index})
            if r.status_code not in (201, 409):
                return _fail(r)
        with tqdm(total=len(files), unit="file", desc=f"ingest -> {index}") as bar:
            for i in range(0, len(files), batch_size):
                try:
                    docs = [file_document(f) for f in files[i:i + batch_size]]
                except DocumentFileError as err:
                    print(f"lorag ingest: {err}", file=sys.stderr)
                    return 1
                r = client.post(f"/v1/indexes/{index}/documents", json={"documents": docs})
                if r.status_code != 200:
                    return _fail(r)
                statuses.update(d["status"] for d in r.json()["data"])
                bar.update(len(docs))
    print(f"{len(files)} files: " + ", ".join(f"{n} {s}" for s, n in sorted(statuses.items())))
    return 0

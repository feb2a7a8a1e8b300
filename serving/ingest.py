"""`lorag ingest`: send .md/.txt/.html files to a running server's index, with progress."""

from __future__ import annotations

import sys
from collections import Counter
from pathlib import Path

import httpx
from tqdm import tqdm

FORMATS = {".md": "markdown", ".markdown": "markdown", ".txt": "text", ".html": "html",
           ".htm": "html"}


def find_files(paths: list[str]) -> list[Path]:
    files: list[Path] = []
    for p in map(Path, paths):
        if p.is_dir():
            files += sorted(f for f in p.rglob("*") if f.is_file() and f.suffix.lower() in FORMATS)
        elif p.is_file():
            if p.suffix.lower() not in FORMATS:
                raise SystemExit(f"lorag ingest: unsupported file type: {p} "
                                 f"(use {', '.join(FORMATS)})")
            files.append(p)
        else:
            raise SystemExit(f"lorag ingest: no such file or folder: {p}")
    return files


def _document(path: Path) -> dict:
    fmt = FORMATS[path.suffix.lower()]
    return {"doc_id": path.stem, "text": path.read_text(encoding="utf-8"),
            "title": "" if fmt == "html" else path.stem, "format": fmt,
            "metadata": {"source": path.name}}


def _fail(response: httpx.Response) -> int:
    try:
        message = response.json()["error"]["message"]
    except Exception:
        message = response.text[:500]
    print(f"lorag ingest: server answered {response.status_code}: {message}", file=sys.stderr)
    return 1


def ingest_paths(paths: list[str], *, index: str, url: str, create: bool,
                 batch_size: int) -> int:
    files = find_files(paths)
    if not files:
        print("lorag ingest: no .md, .txt or .html files found", file=sys.stderr)
        return 1
    dupes = [s for s, n in Counter(f.stem for f in files).items() if n > 1]
    if dupes:
        print(f"lorag ingest: several files map to the same doc_id: {', '.join(dupes)}",
              file=sys.stderr)
        return 1
    statuses: Counter[str] = Counter()
    with httpx.Client(base_url=url.rstrip("/"), timeout=600) as client:
        if create:
            r = client.post("/v1/indexes", json={"name": index})
            if r.status_code not in (201, 409):
                return _fail(r)
        with tqdm(total=len(files), unit="file", desc=f"ingest -> {index}") as bar:
            for i in range(0, len(files), batch_size):
                batch = files[i:i + batch_size]
                r = client.post(f"/v1/indexes/{index}/documents",
                                json={"documents": [_document(f) for f in batch]})
                if r.status_code != 200:
                    return _fail(r)
                statuses.update(d["status"] for d in r.json()["data"])
                bar.update(len(batch))
    print(f"{len(files)} files: " + ", ".join(f"{n} {s}" for s, n in sorted(statuses.items())))
    return 0

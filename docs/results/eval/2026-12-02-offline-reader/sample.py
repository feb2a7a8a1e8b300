"""A sample set as the scripts here index it: documents read by the project's own loader
(`retrieval.files.load_documents`, what `lorag ingest` and `lorag eval` upload), put into a
throw-away index with the given spec."""
import json
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[4]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from retrieval.files import load_documents  # noqa: E402
from retrieval.knowledge_base import Document  # noqa: E402
from retrieval.registry import IndexRegistry  # noqa: E402


def questions(set_name):
    """retrieval/samples/<set_name>/questions.jsonl, in file order."""
    path = ROOT / 'retrieval' / 'samples' / set_name / 'questions.jsonl'
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def index(set_name, spec, embedder_factory=None, name='h'):
    """A fresh index `name` with `spec` holding retrieval/samples/<set_name>/docs."""
    kwargs = {'embedder_factory': embedder_factory} if embedder_factory else {}
    kb = IndexRegistry(Path(tempfile.mkdtemp()), **kwargs).create(name, spec)
    docs = load_documents([ROOT / 'retrieval' / 'samples' / set_name / 'docs'])
    kb.add_documents([Document.model_validate(d) for d in docs])
    return kb

"""Northwind top-4 hits with the exact (torch) and the int8 ONNX query encoder, against the two
server runs of the held-out set."""
import json, sys
from pathlib import Path
ROOT = Path(__file__).resolve().parents[4]
sys.path.insert(0, str(ROOT))
import sample
from serving.config import load_config
import retrieval.embedder as E
cfg = load_config(str(ROOT / 'configs/default.yaml'))
spec = cfg.indexes['helix'].spec()
qs = sample.questions('northwind-ferries')
run = {q['id']: q['retrieved_doc_ids'] for q in json.load(open(str(ROOT) + '/docs/results/eval/2026-12-02-northwind-all-routes/eval.json'))['routes']['rag']['questions']}
old = {q['id']: q['retrieved_doc_ids'] for q in json.load(open(str(ROOT) + '/docs/results/eval/2026-12-02-northwind-heldout/eval.json'))['routes']['rag']['questions']}
for qe in ['torch', 'onnx-int8']:
    import functools
    kb = sample.index('northwind-ferries', spec, functools.partial(E.Embedder, query_encoder=qe))
    same_new = same_old = 0
    for q in qs:
        got = [h['doc_id'] for h in kb.search(q['question'], top_k=4) if h['score'] >= 0.2]
        same_new += got == run[q['id']]; same_old += got == old[q['id']]
    print(qe, 'same as today run', same_new, 'same as session-10 run', same_old, 'of', len(qs))

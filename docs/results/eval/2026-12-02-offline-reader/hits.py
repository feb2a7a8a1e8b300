"""Dense (or MODE=hybrid) top-8 hits of the helix (or SET=<sample folder>) questions, as the route searches: HITS file."""
import json, sys
from pathlib import Path
ROOT = __import__('pathlib').Path(__file__).resolve().parents[4]
sys.path.insert(0, str(ROOT))
OUT = __import__('os').environ.get('OUT', '/tmp/lorag-offline')
import sample
from serving.config import load_config
cfg = load_config(str(ROOT) + '/configs/default.yaml')
from retrieval.spec import SearchSettings
spec = cfg.indexes['helix'].spec()
if __import__('os').environ.get('MODE'):  # MODE=hybrid: dense + FTS5 fused
    spec = spec.model_copy(update={'search': SearchSettings(mode=__import__('os').environ['MODE'])})
SET = __import__('os').environ.get('SET', 'helix')  # a folder of retrieval/samples
kb = sample.index(SET, spec)
qs = sample.questions(SET)
out = []
for q in qs:
    hits = kb.search(q['question'], top_k=8)
    out.append({'id': q['id'], 'kind': q['kind'], 'gold': q['doc_ids'], 'hits': [dict(h) for h in hits]})
    print(q['id'], q['kind'], [round(float(x['score']),3) for x in hits[:4]])
json.dump(out, open(__import__('os').environ.get('HITS', OUT + '/hits.json'), 'w'))

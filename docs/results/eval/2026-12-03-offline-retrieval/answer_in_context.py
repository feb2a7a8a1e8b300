"""How many answerable questions have their answer text in the top 4 chunks (what the route
gives the reader) under the recall_diversity.py variants."""
import sys, re, json, os
ROOT = __import__("pathlib").Path(__file__).resolve().parents[4]
sys.path.insert(0, str(ROOT / "docs/results/eval/2026-12-02-offline-reader")); sys.path.insert(0, str(ROOT))
OUT = os.environ.get("OUT", "/tmp/lorag-offline")
import numpy as np, sample
from serving.config import load_config
from retrieval.spec import SearchSettings
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from recall_diversity import capped, hop, sentences  # noqa
cfg = load_config(str(ROOT / 'configs/default.yaml'))
base = cfg.indexes['helix'].spec().model_copy(update={'embed_headings': True})
EX = ['draft', 'superseded']
def norm(s): return re.sub(r'[^a-z0-9 ]', '', s.lower().replace(',', ''))
VARIANTS = {'plain': None, 'cap2': (2, None), 'cap1': (1, None), 'cap1hop2': (1, 2), 'cap1hop3': (1, 3), 'cap2hop3': (2, 3)}
for SET in ['helix', 'northwind-ferries']:
    qs = sample.questions(SET)
    kb = sample.index(SET, base.model_copy(update={'search': SearchSettings(mode='dense')}))
    for name, v in VARIANTS.items():
        out = []; ans4 = []
        for q in qs:
            if v is None: hits = kb.search(q['question'], top_k=8, exclude_status=EX)
            elif v[1] is None: hits = capped(kb.search(q['question'], top_k=40, exclude_status=EX), v[0], 8)
            else: hits = hop(kb, q['question'], v[0], v[1], 'sent')
            out.append({'id': q['id'], 'kind': q['kind'], 'gold': q['doc_ids'], 'hits': [dict(h) for h in hits]})
            if q['kind'] != 'unanswerable':
                alts = [q['answer']] + q.get('aliases', [])
                ctx = norm(' '.join(h['text'] for h in hits[:4]))
                ans4.append(any(norm(a) in ctx for a in alts))
        json.dump(out, open(f'{OUT}/hits-{SET}-{name}.json', 'w'))
        print(SET, name, 'answer string in top-4 context', sum(ans4), '/', len(ans4), flush=True)

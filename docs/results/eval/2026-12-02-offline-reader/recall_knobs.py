"""recall@5 (documents) of both sample sets by chunk size, search mode and a cap of chunks per
document in the top 5. SIZES=400,600 to choose chunk sizes."""
import json, sys, os
from pathlib import Path
ROOT = Path(__file__).resolve().parents[4]
sys.path.insert(0, str(ROOT))
import sample
from serving.config import load_config
from retrieval.spec import SearchSettings
cfg = load_config(str(ROOT / 'configs/default.yaml'))
base = cfg.indexes['helix'].spec()
def recall(gold, got):
    return len(set(gold) & set(got)) / len(gold)
for SET in ['helix', 'northwind-ferries']:
    qs = [q for q in sample.questions(SET) if q['doc_ids']]
    for size in [int(x) for x in os.environ.get('SIZES', '400,600,800,1000,1400').split(',')]:
        for mode in ['dense', 'hybrid']:
            spec = base.model_copy(update={'search': SearchSettings(mode=mode),
                                           'chunking': base.chunking.model_copy(update={'size': size, 'overlap': min(80, size // 5)})})
            kb = sample.index(SET, spec)
            out = {}
            for cap in [None, 2, 1]:
                rs = []
                for q in qs:
                    hits = kb.search(q['question'], top_k=40)
                    seen = {}; kept = []
                    for h in hits:
                        if cap and seen.get(h['doc_id'], 0) >= cap: continue
                        seen[h['doc_id']] = seen.get(h['doc_id'], 0) + 1; kept.append(h['doc_id'])
                        if len(kept) == 5: break
                    rs.append(recall(q['doc_ids'], kept))
                out[cap] = round(sum(rs) / len(rs), 3)
            print(SET, size, mode, out, flush=True)

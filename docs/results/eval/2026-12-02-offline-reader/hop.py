import json, sys, re
from pathlib import Path
ROOT = __import__('pathlib').Path(__file__).resolve().parents[4]
sys.path.insert(0, str(ROOT))
OUT = __import__('os').environ.get('OUT', '/tmp/lorag-offline')
import numpy as np
import sample
from retrieval.spec import SearchSettings
from serving.config import load_config
cfg = load_config(str(ROOT) + '/configs/default.yaml')
qs = sample.questions('helix')
base = cfg.indexes['helix'].spec()
kbs = {}
for mode in ['dense', 'hybrid']:
    kb = sample.index('helix', base.model_copy(update={'search': SearchSettings(mode=mode)}))
    print(mode, kb.spec.search_settings().mode)
    kbs[mode] = kb
emb = kbs['dense'].embedder
_SENT = re.compile(r'(?<=[.!?])\s+|\n+')
def sentences(t):
    return [s.strip() for s in _SENT.split(t) if s.strip() and not s.strip().startswith('#')]
def twohop(kb, q, k, first=3):
    h1 = kb.search(q, top_k=k)
    top = h1[0]
    sents = sentences(top['text'])
    v = emb.encode_query([q] + sents) if sents else None
    best = sents[int(np.argmax(v[1:] @ v[0]))] if sents else top['text']
    h2 = kb.search(best, top_k=k)
    seen = {h['doc_id'] for h in h1[:first]}
    extra = [h for h in h2 if h['doc_id'] not in seen]
    out = h1[:first]
    ids = {h['chunk_id'] for h in out}
    for h in extra + h1[first:]:
        if h['chunk_id'] not in ids and len(out) < k:
            out.append(h); ids.add(h['chunk_id'])
    return out, best
for mode in ['dense', 'hybrid']:
    for variant in ['plain', 'hop3', 'hop4', 'hop2']:
        tot = n = 0; miss = []
        for q in qs:
            if q['kind'] == 'unanswerable': continue
            if variant == 'plain': hits = kbs[mode].search(q['question'], top_k=5)
            else: hits, best = twohop(kbs[mode], q['question'], 5, int(variant[-1]))
            d = [h['doc_id'] for h in hits]
            r = sum(g in d for g in q['doc_ids'])/len(q['doc_ids']); tot += r; n += 1
            if r < 1: miss.append(q['id'])
        print(mode, variant, round(tot/n, 3), miss, flush=True)
print('----')
for q in qs:
    if q['id'] in ('q32','q34','q36','q37','q35','q38'):
        hits, best = twohop(kbs['dense'], q['question'], 5, 3)
        print(q['id'], q['question'], q['doc_ids'])
        print('   best:', best)
        print('   h2:', [(h['doc_id'], round(h['score'],2)) for h in kbs['dense'].search(best, top_k=5)])

"""Hypothetical document embeddings (HyDE, Gao et al. 2022) with SmolLM2-135M: the model writes
a passage answering the question; search with question + passage (concat) or the mean of
the two vectors (mean) against the question alone (plain)."""
import sys, re, json, os
ROOT = __import__("pathlib").Path(__file__).resolve().parents[4]
sys.path.insert(0, str(ROOT / "docs/results/eval/2026-12-02-offline-reader")); sys.path.insert(0, str(ROOT))
OUT = os.environ.get("OUT", "/tmp/lorag-offline")
import numpy as np, torch, sample
from transformers import AutoTokenizer, AutoModelForCausalLM
from serving.config import load_config
from serving.model_source import resolve_model_source
from retrieval.spec import SearchSettings
cfg = load_config(str(ROOT / 'configs/default.yaml'))
spec = cfg.indexes['helix'].spec().model_copy(update={'embed_headings': True, 'search': SearchSettings(mode='dense')})
EX = ['draft', 'superseded']
path = resolve_model_source('builtin:smollm2-135m-instruct')
tok = AutoTokenizer.from_pretrained(path); model = AutoModelForCausalLM.from_pretrained(path, torch_dtype=torch.float32).eval()
torch.set_num_threads(2)
def norm(s): return re.sub(r'[^a-z0-9 ]', '', s.lower().replace(',', ''))
def rec(g, d): return len(set(g) & set(d)) / len(g)
for SET in ['helix', 'northwind-ferries']:
    kb = sample.index(SET, spec)
    qs = [q for q in sample.questions(SET) if q['doc_ids']]
    res = {}
    for q in qs:
        msgs = [{'role': 'user', 'content': f"Write a short passage from an internal company document that answers this question: {q['question']}"}]
        ids = tok.apply_chat_template(msgs, add_generation_prompt=True, return_tensors='pt')
        if not isinstance(ids, torch.Tensor): ids = ids['input_ids']
        with torch.no_grad(): g = model.generate(ids, max_new_tokens=64, do_sample=False)
        hyp = tok.decode(g[0, ids.shape[1]:], skip_special_tokens=True)
        q['hyp'] = hyp
        variants = {'plain': q['question'], 'concat': q['question'] + '\n' + hyp}
        for name, text in variants.items():
            hits = kb.search(text, top_k=8, exclude_status=EX)
            d = [h['doc_id'] for h in hits]
            ctx = norm(' '.join(h['text'] for h in hits[:4]))
            r = res.setdefault(name, [[], [], []])
            r[0].append(rec(q['doc_ids'], d[:5])); r[1].append(rec(q['doc_ids'], d[:4]))
            r[2].append(any(norm(a) in ctx for a in [q['answer']] + q['aliases']))
        # vector average: question and hypothesis
        v = kb.embedder.encode_query([q['question'], hyp]); vv = v.mean(0, keepdims=True); vv /= np.linalg.norm(vv)
        sc, ii = kb.index.search(vv.astype('float32'), 30, None)
        rows = kb.store.chunk_rows([int(i) for i in ii[0] if i >= 0])
        ex = kb.store.status_chunk_ids(EX)
        hits = [rows[int(i)] for i in ii[0] if int(i) in rows and int(i) not in ex][:8]
        d = [h['doc_id'] for h in hits]; ctx = norm(' '.join(h['text'] for h in hits[:4]))
        r = res.setdefault('mean', [[], [], []])
        r[0].append(rec(q['doc_ids'], d[:5])); r[1].append(rec(q['doc_ids'], d[:4])); r[2].append(any(norm(a) in ctx for a in [q['answer']] + q['aliases']))
        print(q['id'], {k: (round(v[0][-1], 2), int(v[2][-1])) for k, v in res.items()}, repr(hyp[:80]), flush=True)
    for k, v in res.items(): print(SET, k, 'recall@5', round(np.mean(v[0]), 3), 'recall@4', round(np.mean(v[1]), 3), 'answer in top4', sum(v[2]), '/', len(v[2]))

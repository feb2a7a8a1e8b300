"""Iterative retrieval-generation (ITER-RETGEN, Shao et al. 2023) offline, as the route with
the reader of harness.py: round 1 answers from the route's sources; unless it refused, round 2
searches question + round-1 answer and answers again from: the new top 4 (replace), round 1's
top 2 + the new best (keep2), or round 1's top 3 + the best new document (append). Usage:
iter_retgen.py ROUTE SET [adapter]."""
import json, sys, time, os, re
from collections import Counter
from types import SimpleNamespace
ROOT = __import__("pathlib").Path(__file__).resolve().parents[4]
sys.path.insert(0, str(ROOT / "docs/results/eval/2026-12-02-offline-reader")); sys.path.insert(0, str(ROOT))
OUT = os.environ.get("OUT", "/tmp/lorag-offline")
import torch
from transformers import AutoTokenizer, AutoModelForCausalLM
from serving import rag
from serving.config import load_config
from serving.model_source import resolve_model_source
from loadtest.evaluation.scoring import score_answer, refusal_phrases
from retrieval.spec import SearchSettings
import sample
route_name = sys.argv[1]; SET = sys.argv[2]; adapter = sys.argv[3] if len(sys.argv) > 3 else None
VARIANTS = os.environ.get('VARIANTS', 'replace,keep2,append').split(',')
cfg = load_config(str(ROOT / 'configs/default.yaml'))
route = cfg.route(route_name); template = route.template; settings = route.retrieval
spec = cfg.indexes['helix'].spec().model_copy(update={'embed_headings': True, 'search': SearchSettings(mode='dense')})
kb = sample.index(SET, spec)
EX = list(settings.exclude_status)
path = resolve_model_source('builtin:smollm2-135m-instruct')
tok = AutoTokenizer.from_pretrained(path)
model = AutoModelForCausalLM.from_pretrained(path, torch_dtype=torch.float32)
if adapter:
    from peft import PeftModel
    model = PeftModel.from_pretrained(model, adapter)
model.eval(); torch.set_num_threads(2)
refusals = refusal_phrases(template.no_context_answer)
def gen(q, hits):
    hits = rag.usable_hits(hits, settings)
    if not hits: return template.no_context_answer, []
    msgs = [{'role': 'user', 'content': q}]
    final, chosen = rag.prepare_messages(tok, template, msgs, hits, max_context_tokens=settings.max_context_tokens, max_model_len=2048, answer_tokens=128)
    srcs = [t for _, t in chosen]
    ids = tok.apply_chat_template(final, add_generation_prompt=True, return_tensors='pt')
    if not isinstance(ids, torch.Tensor): ids = ids['input_ids']
    with torch.no_grad(): g = model.generate(ids, max_new_tokens=128, do_sample=False)
    a = tok.decode(g[0, ids.shape[1]:], skip_special_tokens=True)
    if settings.check_grounding and not rag.grounded(a, srcs + [q]): a = template.no_context_answer
    if a != template.no_context_answer and settings.add_markers: a = rag.add_marker(a, srcs)
    return a, [h['doc_id'] for h in hits[:settings.top_k]]
def plain(a):
    try: a = json.loads(a).get('answer', a)
    except Exception: pass
    return rag.MARKER_RE.sub('', str(a)).strip()
def is_refusal(a): return any(p in plain(a).lower() for p in refusals) or a == template.no_context_answer
res = {v: Counter() for v in ['r1'] + VARIANTS}; tot = Counter(); out = []
t0 = time.time()
for q in sample.questions(SET):
    item = SimpleNamespace(answerable=q['kind'] != 'unanswerable', answer=q['answer'], aliases=q['aliases'])
    h1 = kb.search(q['question'], top_k=8, exclude_status=EX)
    a1, d1 = gen(q['question'], h1[:settings.top_k])
    tot[q['kind']] += 1
    rec = {'id': q['id'], 'kind': q['kind'], 'r1': a1, 'ok_r1': score_answer(a1, item, refusals)}
    res['r1'][q['kind']] += rec['ok_r1']
    h2 = None if is_refusal(a1) else kb.search(q['question'] + '\n' + plain(a1), top_k=8, exclude_status=EX)
    for v in VARIANTS:
        if h2 is None: a, hh = a1, None
        else:
            if v == 'replace': hh = h2[:settings.top_k]
            elif v == 'keep2':
                hh = h1[:2]; ids = {h['chunk_id'] for h in hh}
                hh += [h for h in h2 if h['chunk_id'] not in ids][:settings.top_k - 2]
            elif v == 'append':  # round-1 top 3 + best new doc of round 2
                hh = h1[:3]; docs = {h['doc_id'] for h in hh}
                hh += [h for h in h2 if h['doc_id'] not in docs][:1]
            a, _ = gen(q['question'], hh)
        ok = score_answer(a, item, refusals); res[v][q['kind']] += ok
        rec[v] = a; rec['ok_' + v] = ok; rec['docs_' + v] = [h['doc_id'] for h in hh] if hh else None
    out.append(rec)
    print(q['id'], q['kind'], {k: int(rec['ok_' + k]) for k in ['r1'] + VARIANTS}, repr(plain(a1)[:60]), '->', repr(plain(rec[VARIANTS[0]])[:60]), flush=True)
for v in res: print(v, {k: f'{res[v][k]}/{tot[k]}' for k in tot}, sum(res[v].values()))
print(f'{time.time()-t0:.0f}s')
json.dump(out, open(f'{OUT}/iter-{SET}-{route_name}.json', 'w'), indent=1)

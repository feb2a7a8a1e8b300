"""Offline reader harness: same hits, prompt, grounding, markers and scoring as the server's
rag/hybrid route; SmolLM2 through transformers, greedy. Usage: harness.py ROUTE TOPK [adapter] [system-file]"""
import json, sys, time
from collections import Counter
from types import SimpleNamespace
ROOT = __import__('pathlib').Path(__file__).resolve().parents[4]
sys.path.insert(0, str(ROOT))
OUT = __import__('os').environ.get('OUT', '/tmp/lorag-offline')
import torch
from transformers import AutoTokenizer, AutoModelForCausalLM
from serving import rag
from serving.config import load_config
from serving.model_source import resolve_model_source
from loadtest.evaluation.scoring import score_answer, refusal_phrases, cited_doc_ids
route_name, topk = sys.argv[1], int(sys.argv[2])
adapter = sys.argv[3] if len(sys.argv) > 3 and sys.argv[3] != '-' else None
cfg = load_config(str(ROOT) + '/configs/default.yaml')
route = cfg.route(route_name)
template = route.template
if len(sys.argv) > 4:
    template = template.model_copy(update={'system': open(sys.argv[4]).read().strip()})
import os
if os.environ.get('OLDCTX'):
    template = template.model_copy(update={'context': 'Sources:\n<sources>\n{sources}\n</sources>\n\nQuestion: {question}'})
settings = route.retrieval.model_copy(update={'top_k': topk})
path = resolve_model_source('builtin:smollm2-135m-instruct')
tok = AutoTokenizer.from_pretrained(path)
model = AutoModelForCausalLM.from_pretrained(path, torch_dtype=torch.float32)
if adapter:
    from peft import PeftModel
    model = PeftModel.from_pretrained(model, adapter)
model.eval()
torch.set_num_threads(2)
hits_all = json.load(open(os.environ.get('HITS', OUT + '/hits.json')))
import re
COMPRESS = int(os.environ.get('COMPRESS', '0'))
REORDER = os.environ.get('REORDER')
if COMPRESS:
    from sentence_transformers import SentenceTransformer
    from retrieval.embedder import resolve_embedder
    st = SentenceTransformer(resolve_embedder('builtin:all-minilm-l6-v2'), device='cpu')
_SENT = re.compile(r'(?<=[.!?])\s+(?=[A-Z0-9"(\[€£$-])|\n+')
def sentences(text):
    out = []
    for part in _SENT.split(text):
        part = part.strip()
        if not part or part.startswith('#'):
            continue
        out.append(part)
    return out
def compress(question, hits, n):
    sents = [(i, j, s) for i, h in enumerate(hits) for j, s in enumerate(sentences(h['text']))]
    if not sents:
        return hits
    v = st.encode([question] + [s for _, _, s in sents], normalize_embeddings=True)
    sc = v[1:] @ v[0]
    order = sorted(range(len(sents)), key=lambda k: -sc[k])[:n]
    keep = {}
    best = {}
    for k in order:
        i, j, s = sents[k]
        keep.setdefault(i, []).append((j, s))
        best[i] = max(best.get(i, -9), sc[k])
    out = []
    idx = sorted(keep, key=lambda i: -best[i]) if REORDER else sorted(keep)
    for i in idx:
        h = dict(hits[i]); h['text'] = ' '.join(s for _, s in sorted(keep[i])); out.append(h)
    return out

SET = os.environ.get('SET', 'helix')  # a folder of retrieval/samples
import sample
qs = {q['id']: q for q in sample.questions(SET)}
refusals = refusal_phrases(template.no_context_answer)
res = Counter(); tot = Counter(); out = []
t0 = time.time()
for h in hits_all:
    q = qs[h['id']]
    hits = h['hits'][:topk]
    hits = rag.usable_hits(hits, settings)
    if COMPRESS and hits:
        hits = compress(q['question'], hits, COMPRESS)
    if os.environ.get('REVERSE'):  # best source last, next to the question
        hits = hits[::-1]
    msgs = [{'role': 'user', 'content': q['question']}]
    replaced = None
    if not hits:
        answer = template.no_context_answer; srcs = []; chosen = []
    else:
        final, chosen = rag.prepare_messages(tok, template, msgs, hits, max_context_tokens=settings.max_context_tokens,
                                             max_model_len=2048, answer_tokens=128)
        srcs = [t for _, t in chosen]
        ids = tok.apply_chat_template(final, add_generation_prompt=True, return_tensors='pt')
        if not isinstance(ids, torch.Tensor): ids = ids['input_ids']
        with torch.no_grad():
            g = model.generate(ids, max_new_tokens=128, do_sample=False)
        answer = tok.decode(g[0, ids.shape[1]:], skip_special_tokens=True)
        if settings.check_grounding:
            if not rag.grounded(answer, srcs + [q['question']]):
                replaced = answer  # what the reader wrote, before the grounding check
                answer = template.no_context_answer
        if answer != template.no_context_answer and settings.add_markers:
            answer = rag.add_marker(answer, srcs)
    item = SimpleNamespace(answerable=q['kind'] != 'unanswerable', answer=q['answer'], aliases=q['aliases'])
    ok = score_answer(answer, item, refusals)
    res[q['kind']] += ok; tot[q['kind']] += 1
    out.append({'id': q['id'], 'kind': q['kind'], 'ok': ok, 'answer': answer,
                **({'replaced': replaced} if replaced is not None else {})})
    print(q['id'], q['kind'], ok, repr(answer[:100]), flush=True)
print({k: f'{res[k]}/{tot[k]}' for k in tot}, 'overall', sum(res.values()), '/', sum(tot.values()), f'{time.time()-t0:.0f}s')
json.dump(out, open(f'{OUT}/out-{SET}-{route_name}-{topk}-{("ad" if adapter else "base") + os.environ.get("TAG", "")}.json', 'w'))

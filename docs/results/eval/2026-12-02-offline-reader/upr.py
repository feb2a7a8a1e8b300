import json, sys, time, os
ROOT = __import__('pathlib').Path(__file__).resolve().parents[4]
sys.path.insert(0, str(ROOT))
OUT = __import__('os').environ.get('OUT', '/tmp/lorag-offline')
import torch
from transformers import AutoTokenizer, AutoModelForCausalLM
from serving.model_source import resolve_model_source
path = resolve_model_source('builtin:smollm2-135m-instruct')
tok = AutoTokenizer.from_pretrained(path)
model = AutoModelForCausalLM.from_pretrained(path, torch_dtype=torch.float32).eval()
torch.set_num_threads(2)
hits_all = json.load(open(os.environ.get('HITS', OUT + '/hits.json')))
STYLE = os.environ.get('STYLE', 'plain')
def score(passage, question):
    if STYLE == 'chat':
        pre = tok.apply_chat_template([{'role': 'user', 'content': f'Passage: {passage}\n\nWrite a question that this passage answers.'}], tokenize=False, add_generation_prompt=True)
    else:
        pre = f'Passage: {passage}\nPlease write a question based on this passage.\nQuestion:'
    a = tok(pre, add_special_tokens=False)['input_ids']
    b = tok(' ' + question if STYLE != 'chat' else question, add_special_tokens=False)['input_ids']
    ids = torch.tensor([a + b])
    with torch.no_grad():
        lp = torch.log_softmax(model(ids).logits[0, len(a)-1:-1], -1)
    return lp.gather(1, torch.tensor(b)[:, None]).mean().item()
t0 = time.time()
stats = {'dense1': 0, 'upr1': 0, 'n': 0}
rec = {k: [0, 0] for k in ['dense2', 'upr2', 'dense4', 'upr4', 'dense5', 'upr5']}
qq = {json.loads(l)['id']: json.loads(l)['question'] for l in open(str(ROOT) + '/retrieval/samples/helix/questions.jsonl')}
res = []
for q in hits_all:
    hs = q['hits'][:8]
    s = [score(h['text'], qq[q['id']]) for h in hs]
    order = sorted(range(len(hs)), key=lambda i: -s[i])
    res.append({'id': q['id'], 'kind': q['kind'], 'gold': q['gold'], 'upr': [hs[i]['chunk_id'] for i in order], 'scores': [s[i] for i in order]})
    if q['kind'] == 'unanswerable': continue
    gd = q['gold']
    dense = [h['doc_id'] for h in hs]; upr = [hs[i]['doc_id'] for i in order]
    stats['n'] += 1; stats['dense1'] += dense[0] in gd; stats['upr1'] += upr[0] in gd
    for k in (2, 4, 5):
        rec[f'dense{k}'][0] += sum(g in dense[:k] for g in gd) / len(gd)
        rec[f'upr{k}'][0] += sum(g in upr[:k] for g in gd) / len(gd)
    print(q['id'], q['kind'], 'dense top', dense[0] in gd, 'upr top', upr[0] in gd, flush=True)
print(stats, {k: round(v[0] / stats['n'], 3) for k, v in rec.items()}, f'{time.time()-t0:.0f}s')
json.dump(res, open(f'{OUT}/upr-{STYLE}-{os.path.basename(os.environ.get("HITS","dense"))}.json', 'w'))

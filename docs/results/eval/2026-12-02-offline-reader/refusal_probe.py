"""How sure is the reader when it says "I don't know"? For every question and format
prompt of a sample set (SET, default helix), the route's sources (top 4 after the route's
exclude_status, usable_hits) and prompt, and the probability that the answer's first token
is "I" (the start of "I don't know."): after '{"answer": "' for the hybrid route (JSON),
at the start for rag. Usage: refusal_probe.py ROUTE [adapter] -> $OUT/probe-<set>-<route>.json
"""
import json
import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[4]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))
OUT = os.environ.get('OUT', '/tmp/lorag-offline')
import torch  # noqa: E402
from transformers import AutoModelForCausalLM, AutoTokenizer  # noqa: E402

import sample  # noqa: E402
from serving import rag  # noqa: E402
from serving.config import load_config  # noqa: E402
from serving.model_source import resolve_model_source  # noqa: E402

route_name = sys.argv[1]
adapter = sys.argv[2] if len(sys.argv) > 2 else None
SET = os.environ.get('SET', 'helix')
cfg = load_config(str(ROOT / 'configs' / 'default.yaml'))
route = cfg.route(route_name)
settings, template = route.retrieval, route.template
path = resolve_model_source('builtin:smollm2-135m-instruct')
tok = AutoTokenizer.from_pretrained(path)
model = AutoModelForCausalLM.from_pretrained(path, torch_dtype=torch.float32)
if adapter:
    from peft import PeftModel
    model = PeftModel.from_pretrained(model, adapter)
model.eval()
torch.set_num_threads(2)
kb = sample.index(SET, cfg.indexes['helix'].spec())
folder = ROOT / 'retrieval' / 'samples' / SET
items = sample.questions(SET) + [
    {**json.loads(line), 'kind': 'format'}
    for line in (folder / 'format_prompts.jsonl').read_text().splitlines() if line.strip()]
prefix = '{"answer": "' if route_name == 'hybrid' else ''
i_token = tok('I', add_special_tokens=False)['input_ids'][-1]
out = []
for q in items:
    hits = kb.search(q['question'], top_k=settings.top_k, exclude_status=settings.exclude_status)
    hits = rag.usable_hits(hits, settings)
    if not hits:
        out.append({'id': q['id'], 'kind': q['kind'], 'p_idk': None})
        continue
    final, _ = rag.prepare_messages(tok, template, [{'role': 'user', 'content': q['question']}],
                                    hits, max_context_tokens=settings.max_context_tokens,
                                    max_model_len=2048, answer_tokens=128)
    text = tok.apply_chat_template(final, add_generation_prompt=True, tokenize=False) + prefix
    ids = tok(text, add_special_tokens=False, return_tensors='pt')['input_ids']
    with torch.no_grad():
        probs = torch.softmax(model(ids).logits[0, -1], -1)
    top = torch.topk(probs, 3)
    rec = {'id': q['id'], 'kind': q['kind'], 'p_idk': round(float(probs[i_token]), 4),
           'top': [(tok.decode([int(i)]), round(float(p), 3)) for p, i in zip(*top)],
           'sources': [h['doc_id'] for h in hits]}
    out.append(rec)
    print(rec['id'], rec['kind'], rec['p_idk'], rec['top'], flush=True)
Path(OUT).mkdir(parents=True, exist_ok=True)
json.dump(out, open(f'{OUT}/probe-{SET}-{route_name}.json', 'w'), indent=1)

"""Would an "unknown name" check help? For each question, the capitalised names and codes it
uses that none of the rag route's sources (top 4, drafts and superseded left out) mention,
beside whether rag and hybrid answered it right in the session-15 lifecycle runs.
Measured: it would catch 1 unanswerable question (helix q44) and break 2 right answers
(northwind n15 "Brannock-based", n29 "Authority"); not built."""
import json, re, sys
from pathlib import Path
ROOT = Path(__file__).resolve().parents[4]; sys.path.insert(0, str(ROOT)); sys.path.insert(0, str(Path(__file__).resolve().parent))
import sample
from retrieval.embedder import Embedder
from serving import rag
from serving.config import load_config
cfg = load_config(str(ROOT/'configs/default.yaml'))
emb = Embedder('builtin:all-minilm-l6-v2')
WORD = r"[A-Z][\w\-]*(?:'s)?"
NAME_RE = re.compile(rf"(?<![\w\-])({WORD}(?:\s+{WORD})*)")
CODE_RE = re.compile(r"(?<![\w\-])((?=[\w\-]*\d)(?=[\w\-]*[A-Za-z])[\w]+(?:-[\w]+)*)")
def names(q):
    out = []
    for m in NAME_RE.finditer(q):
        s = m.group(1)
        if m.start() == 0 or q[:m.start()].rstrip().endswith(('.', '?', '!')):
            parts = s.split()
            s = ' '.join(parts[1:])  # drop the sentence-initial word
            if not s: continue
        out.append(re.sub(r"'s\b", "", s))
    out += [m.group(1) for m in CODE_RE.finditer(q)]
    return out
def norm(t): return re.sub(r"\s+", " ", t.lower())
for s, f in [('helix','helix'),('northwind','northwind-ferries')]:
    d = json.load(open(f'{ROOT}/docs/results/eval/2026-12-03-lifecycle-{s}/eval.json'))
    kb = sample.index(f, cfg.indexes['helix'].spec(), embedder_factory=lambda n: emb, name='e')
    folder = ROOT/'retrieval/samples'/f
    items = sample.questions(f) + [{**json.loads(l), 'kind': 'format'} for l in (folder/'format_prompts.jsonl').read_text().splitlines() if l.strip()]
    res = {r['id']: r for route in ('rag','hybrid') for r in d['routes'][route]['questions']+d['routes'][route]['format_prompts'] if route=='hybrid'}
    resr = {r['id']: r for r in d['routes']['rag']['questions']+d['routes']['rag']['format_prompts']}
    print('=====', s)
    for q in items:
        st = cfg.route('rag').retrieval
        hits = rag.usable_hits(kb.search(q['question'], 4, exclude_status=st.exclude_status), st)
        text = norm(' '.join(f"{h['title']} > {h['section']}\n{h['text']}" for h in hits))
        missing = [n for n in names(q['question']) if norm(n) not in text]
        if missing or q['kind']=='unanswerable':
            print(q['id'], q['kind'], 'hyb ok' if res[q['id']]['correct'] else 'hyb XX', 'rag ok' if resr[q['id']]['correct'] else 'rag XX', 'MISSING' if missing else '', missing, '|', names(q['question']))

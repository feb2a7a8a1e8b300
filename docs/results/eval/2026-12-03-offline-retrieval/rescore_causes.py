"""Re-score saved eval.json runs with the current scoring and print the "Why answers were
wrong" table (runs saved before causes existed). Usage: rescore_causes.py RUN/eval.json ..."""
import json, os, sys
from types import SimpleNamespace
sys.path.insert(0, str(__import__('pathlib').Path(__file__).resolve().parents[4]))
from loadtest.evaluation.metrics import score_record, route_metrics
from loadtest.evaluation.report import causes_table
from loadtest.evaluation.scoring import refusal_phrases
for path in sys.argv[1:]:
    d = json.load(open(path))
    for name, route in d['routes'].items():
        nca = d['config']['routes'][name].get('no_context_answer') if isinstance(d['config']['routes'][name], dict) else None
        refusals = refusal_phrases(nca or "I don't know.")
        out = {}
        for key in ['questions', 'format_prompts']:
            recs = []
            for r in route[key]:
                kind = r['kind']
                item = SimpleNamespace(kind=kind, answerable=bool(r['gold']), answer=r['gold'], aliases=r['aliases'], doc_ids=r['gold_doc_ids'], question=r['question'])
                raw = {k: r[k] for k in ['route', 'id', 'kind', 'answer', 'retrieved_doc_ids', 'latency_s', 'completion_tokens', 'error', 'grounding']}
                s = score_record(raw, item, refusals)
                assert s['correct'] == r['correct'], (r['id'], s['correct'])
                recs.append(s)
            out[key] = recs
        route['metrics']['wrong_causes'] = route_metrics(SimpleNamespace(retrieval=d['config']['routes'][name].get('retrieval')), out['questions'], out['format_prompts'], {'recall': 0, 'all_found': 0, 'k': 5})['wrong_causes']
    print(path); print(causes_table(d)); print()

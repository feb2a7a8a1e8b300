"""Hits reordered by upr.py's ranking: python reorder.py HITS UPR_JSON OUT_HITS."""
import json, sys
hits, upr, out = sys.argv[1:4]
order = {x['id']: x['upr'] for x in json.load(open(upr))}
res = []
for q in json.load(open(hits)):
    by = {h['chunk_id']: h for h in q['hits']}
    res.append({**q, 'hits': [by[c] for c in order[q['id']]]})
json.dump(res, open(out, 'w'))

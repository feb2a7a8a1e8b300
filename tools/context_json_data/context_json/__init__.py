"""The generator of the context-json adapter's training data, by concern.

`make_context_json.py` (beside this package) is the entry point; see its docstring.

- settings: seed, route, model, split sizes and the per-organisation quotas
- vocabulary, kinds, policies: the word lists, organisation kinds and policy fields
- model: documents, facts, question candidates and small text helpers
- answers: answer composers (facts' values and markers -> answer text)
- org, docs_core, docs_optional, questions: one invented organisation
  (OrgWriter): its random pieces, documents, facts and question candidates
- retrieve: the route's retrieval and prompt (Renderer) and the labelling of targets
- examples: organisations -> selected, labelled chat examples (incl. masked ones)
"""

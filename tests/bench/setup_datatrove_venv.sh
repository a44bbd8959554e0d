#!/usr/bin/env bash
# Create .venv-datatrove/: datatrove and exactly what the benchmark against it needs, pinned.
#
# Why a separate virtual environment: datatrove brings its own numpy/fastText/huggingface-hub pins
# (numpy>=2, the `fasttext-numpy2-wheel` fork) that must not leak into the project's .venv, and the
# benchmark has to measure datatrove as its users install it, not as a library inside roots.
#
# What is pinned and why:
#   datatrove[processing]==0.10.1  latest release; [processing] holds fastText, nltk, xxhash, ...
#   fasttext-numpy2-wheel==0.9.2   the fastText build datatrove requires. Unlike PyPI's fasttext 0.9.3,
#                                  its single-string `predict` works under numpy 2 (datatrove's
#                                  LanguageFilter predicts one document at a time with k=-1). datatrove
#                                  0.10.1 itself requires numpy>=2, so numpy<2 is not an option.
#   numpy==2.4.6                   same numpy as the project's .venv, so array code costs the same.
#   spacy==3.8.18                  datatrove's English word tokenizer (Gopher filters, MinHash) is
#                                  `spacy.blank("en")`; spacy is only in the heavy [multilingual] extra.
#                                  Blank models are built in: nothing is downloaded at run time.
#   kenlm==0.3.0, sentencepiece==0.2.3  the same versions roots scores perplexity with.
#   orjson==3.13.0                 JsonlReader/JsonlWriter import it (it is in the [io] extra, which
#                                  would also pull datasets and pyarrow).
#   (tokenizers==0.23.3 comes with datatrove; the same version as the project's .venv, so the
#   tokenisation rows compare the same HF tokenizers build. PIIFormatter needs nothing extra.)
#   warcio==1.8.1, faust-cchardet==3.2.0, python-magic==0.4.27 (and six==1.17.0 for warcio)
#                                  datatrove's WarcReader (the web row of `make bench`, issue 22): warcio
#                                  reads the WARC, magic sniffs pages without a payload type (it needs the
#                                  system libmagic), cchardet guesses charsets. They are datatrove's [io]
#                                  extra, which would also pull datasets and pyarrow.
#   aiohttp==3.14.5                LanguageFilter resolves its model URL through fsspec's HTTP filesystem
#                                  even when the model is already cached, and that needs aiohttp, which
#                                  no datatrove extra but [s3] installs. Nothing is downloaded: the
#                                  benchmark seeds the cache with roots' lid.176.ftz.
# Every transitive dependency is pinned too (the constraints below are `pip freeze` of a working
# environment), so two machines benchmark the same code.
#
# Usage: setup_datatrove_venv.sh [VENV_DIR] [--check]
#   --check  only verify that pip can download every pinned distribution (no install).
# Idempotent: a stamp file holding the hash of this script's pins skips the work on re-runs; changing
# a pin rebuilds the environment from scratch.
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
VENV="$REPO/.venv-datatrove"
CHECK=0
for arg in "$@"; do
  case "$arg" in
    --check) CHECK=1 ;;
    -*) echo "unknown option $arg" >&2; exit 2 ;;
    *) VENV="$arg" ;;
  esac
done

REQUIREMENTS='datatrove[processing]==0.10.1
fasttext-numpy2-wheel==0.9.2
numpy==2.4.6
spacy==3.8.18
kenlm==0.3.0
sentencepiece==0.2.3
orjson==3.13.0
aiohttp==3.14.5
warcio==1.8.1
faust-cchardet==3.2.0
python-magic==0.4.27'

CONSTRAINTS='aiohappyeyeballs==2.7.1
aiohttp==3.14.5
aiosignal==1.4.0
annotated-doc==0.0.7
annotated-types==0.8.0
anyio==4.16.0
attrs==26.1.0
babel==2.18.0
blis==1.3.4
catalogue==2.0.10
certifi==2026.10.19.post1
charset-normalizer==3.5.3
click==8.5.1
cloudpathlib==0.26.0
cloudpickle==3.1.3
confection==1.3.4
courlan==1.4.0
cymem==2.0.16
datatrove==0.10.1
dateparser==1.5.0
defusedxml==0.7.1
dill==0.4.1
faust-cchardet==3.2.0
fasteners==0.20
fasttext-numpy2-wheel==0.9.2
filelock==4.3.1
fsspec==2026.9.0
frozenlist==1.8.0
ftfy==6.3.1
h11==0.16.0
hf-xet==1.8.0
htmldate==1.11.0
httpcore==1.0.9
httpcore2==2.16.2
httpx==0.28.1
httpx2==2.16.2
huggingface_hub==2.4.0
humanize==4.17.0
idna==3.20
inscriptis==2.7.6
Jinja2==3.1.6
joblib==1.6.0
jusText==3.0.2
kenlm==0.3.0
loguru==0.7.3
lxml==6.1.3
lxml_html_clean==0.4.6
markdown-it-py==4.3.0
MarkupSafe==3.0.4
mdurl==0.1.2
multidict==7.2.1
multiprocess==0.70.19
murmurhash==1.0.16
nltk==3.10.4
numpy==2.4.6
orjson==3.13.0
packaging==26.4
preshed==3.0.15
propcache==0.5.4
pyahocorasick==2.3.1
pybind11==3.1.0
pydantic==2.14.4
pydantic_core==2.50.5
Pygments==2.21.0
python-dateutil==4.0.0
python-magic==0.4.27
pytz==2026.6
PyYAML==6.0.4
regex==2026.11.19
requests==2.34.2
requests-file==3.0.1
rich==15.0.0
sentencepiece==0.2.3
shellingham==1.5.4
six==1.17.0
smart_open==9.0.2
spacy==3.8.18
spacy-legacy==3.0.12
spacy-loggers==1.0.5
srsly==2.5.6
thinc==8.3.14
tld==0.13.2
tldextract==5.4.0
tokenizers==0.23.3
tqdm==4.70.1
trafilatura==1.11.0
truststore==0.10.5
typer==0.29.2
typing-inspection==0.4.5
typing_extensions==4.16.0
tzdata==2026.6
tzlocal==5.4.5
urllib3==2.8.0
warcio==1.8.1
wasabi==1.1.3
wcwidth==0.9.4
weasel==1.0.1
wrapt==2.5.2
xxhash==3.8.2
yarl==1.25.1'

# Interpreter: $PYTHON, else python3.11 (the project's version, which the constraints were resolved
# for), else python3.
PY_BOOT="${PYTHON:-}"
if [ -z "$PY_BOOT" ]; then
  if command -v python3.11 >/dev/null 2>&1; then PY_BOOT=python3.11; else PY_BOOT=python3; fi
fi

TMP="$(mktemp -d)"
trap 'rm -rf "$TMP"' EXIT
printf '%s\n' "$REQUIREMENTS" > "$TMP/requirements.txt"
printf '%s\n' "$CONSTRAINTS" > "$TMP/constraints.txt"

if [ "$CHECK" -eq 1 ]; then
  # Source distributions are allowed (kenlm only ships one); --no-deps because every dependency is
  # listed in the constraints.
  "$PY_BOOT" -m pip download -q --no-deps -d "$TMP/dl" -r "$TMP/constraints.txt"
  echo "pip download: all $(wc -l < "$TMP/constraints.txt") pinned distributions are available"
  exit 0
fi

PIN_HASH="$( (printf '%s\n%s\n' "$REQUIREMENTS" "$CONSTRAINTS"; "$PY_BOOT" -c 'import sys; print(sys.version)') \
  | sha256sum | cut -c1-16)"
STAMP="$VENV/.installed-$PIN_HASH"
if [ -f "$STAMP" ] && [ -x "$VENV/bin/python" ]; then
  exit 0
fi

echo "setting up $VENV (datatrove 0.10.1; kenlm builds from source, which takes a minute)" >&2
rm -rf "$VENV"
"$PY_BOOT" -m venv "$VENV"
"$VENV/bin/python" -m pip install -q --upgrade pip wheel setuptools
# kenlm ships only an sdist, so it is compiled here (a C++ compiler is needed, as for the project's .venv).
"$VENV/bin/python" -m pip install -q -r "$TMP/requirements.txt" -c "$TMP/constraints.txt"

# Prove the things the benchmark relies on, so a broken environment fails here and not mid-benchmark.
"$VENV/bin/python" - <<'EOF'
import fasttext.FastText  # noqa: F401  (the module datatrove's FT176LID loads)
import kenlm  # noqa: F401
import numpy
import orjson  # noqa: F401
import sentencepiece  # noqa: F401
import spacy

from datatrove.executor import LocalPipelineExecutor  # noqa: F401
from datatrove.pipeline.filters import GopherQualityFilter, GopherRepetitionFilter, LanguageFilter  # noqa: F401
from datatrove.pipeline.formatters import PIIFormatter  # noqa: F401
from datatrove.pipeline.readers import WarcReader  # noqa: F401  (with warcio, magic, cchardet below)
import cchardet, magic, warcio  # noqa: F401,E401
from datatrove.pipeline.tokens import MegatronDocumentTokenizer  # noqa: F401  (needs `tokenizers`)
from datatrove.utils.text import split_into_words
from fsspec.core import strip_protocol

assert numpy.__version__.startswith("2."), numpy.__version__
assert split_into_words("Hello, world!", "en") == ["Hello", ",", "world", "!"]
spacy.blank("en")
strip_protocol("https://example.org/x")  # what LanguageFilter needs aiohttp for
print("datatrove environment OK")
EOF
touch "$STAMP"

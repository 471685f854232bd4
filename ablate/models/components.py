"""The registries of model components that configs name: positional encodings and attention kinds.

They live here, apart from the torch modules that implement them, so a config can be validated (and
`ablate list` printed) without importing torch: built-ins are declared by name and module, and that
module registers the class when first needed. A plugin registers a new one with the usual decorator:

    from ablate.models.components import POSITIONAL
    from ablate.models.positional import PositionalEncoding

    @POSITIONAL.register("mine", help="...")
    class Mine(PositionalEncoding): ...
"""

from ablate.registry import Registry

POSITIONAL = Registry("positional encoding")
ATTENTION = Registry("attention")

for _name, _help, _meta in (
    ("sinusoidal", "fixed sin/cos of position, as Vaswani et al. 2017", {}),
    ("learned", "a trained embedding per position (none for lengths beyond max_len)", {}),
    ("rotary", "rotary position embedding (RoPE, Su et al. 2021) applied to queries and keys", {"even_d_k": True}),
    ("none", "no position information: self-attention is then permutation-equivariant", {}),
):
    POSITIONAL.declare(_name, "ablate.models.positional", help=_help, **_meta)
POSITIONAL.declare("alibi", "ablate.models.alibi", help="ALiBi (Press et al. 2022): no embeddings; each head "
                   "penalises attention scores linearly in distance (encoder: a mirror slope to the right)")
POSITIONAL.declare("alibi_symmetric", "ablate.models.alibi", help="ALiBi with -m|i-j| in the encoder (data2vec "
                   "2.0): blind to a source's direction, so an encoder-decoder cannot learn reverse")

for _name, _help in (
    ("multihead", "multi-head scaled dot-product attention (Vaswani et al. 2017)"),
    ("additive", "Bahdanau et al. 2015: score = v . tanh(W q + U k)"),
    ("dot", "Luong et al. 2015: score = q . k"),
):
    ATTENTION.declare(_name, "ablate.models.attention", help=_help)
ATTENTION.declare("linear", "ablate.models.linear_attention",
                  help="Katharopoulos et al. 2020: kernel phi = elu + 1, causal by cumulative sums, constant-size "
                       "decoding state")

"""The `ssm` architecture: its config and builder (torch-free; the layers are in ssm_layers.py).

A stack of selective diagonal state-space blocks (S4D: Gu et al. 2022; Mamba: Gu & Dao 2023) shaped as the
lstm preset is: one causal stack reads `source <bos> target` (PrefixLM), so it compares directly with
rnn/gru/lstm/cnn. Training runs a parallel scan over the sequence; decoding carries a constant-size state.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Optional

from ablate.models.config import ARCHS, TiedConfig
from ablate.structured import option

if TYPE_CHECKING:
    from ablate.models.seq_models import SeqModel, TaskInfo


@dataclass
class SSMConfig(TiedConfig):
    arch: str = option("ssm", "the architecture")
    d_state: int = option(16, "state size N per channel (A is a diagonal N x N per channel)", minimum=1)
    expand: int = option(2, "inner width = expand * d_model (the channels the scan runs over)", minimum=1)
    d_conv: int = option(4, "width of the short causal depthwise convolution before the scan", minimum=1)
    dt_rank: Optional[int] = option(None, "rank of the projection that makes the step size (default "
                                    "ceil(d_model / 16), as Mamba)", minimum=1)

    def derive(self) -> tuple[SSMConfig, list[str]]:
        from dataclasses import replace

        if self.dt_rank is None:
            return replace(self, dt_rank=-(-self.d_model // 16)), []
        return self, []

    def with_width(self, d_model: int) -> SSMConfig:
        """dt_rank follows d_model when it was automatic; a rank set by hand stays."""
        from dataclasses import replace

        auto = self.dt_rank in (None, -(-self.d_model // 16))
        return replace(self, d_model=d_model, dt_rank=-(-d_model // 16) if auto else self.dt_rank)


@ARCHS.register("ssm", config=SSMConfig,
                help="selective diagonal state-space stack (S4D/Mamba) over `source <bos> target`: a parallel scan "
                     "to train, a constant-size state to decode")
def build_ssm(cfg: SSMConfig, info: TaskInfo) -> SeqModel:
    from ablate.models.seq_models import PrefixLM
    from ablate.models.ssm_layers import SSMStack

    body = SSMStack(cfg.d_model, cfg.n_layers, cfg.d_state, cfg.expand, cfg.d_conv, cfg.dt_rank, cfg.dropout)
    return PrefixLM(info, cfg.d_model, body, cfg.tie_embeddings)

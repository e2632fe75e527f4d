"""Building blocks: one module per job, shared by R2MF-Net and the baselines."""
from r2mfnet.models.blocks.attention_gate import AttentionGate
from r2mfnet.models.blocks.conv import ConvBlock, ConvNormAct, conv_block, make_norm, num_groups
from r2mfnet.models.blocks.inception import InceptionBlock, split_channels
from r2mfnet.models.blocks.mcskip import MCSkip, source_levels
from r2mfnet.models.blocks.recurrent import (
    IdentitySkip,
    R2Jump,
    RecurrentConv,
    RecurrentResidualUnit,
    RRCNNBlock,
    default_units,
    resolve_units,
)
from r2mfnet.models.blocks.scse import SCSELite

__all__ = [
    "AttentionGate",
    "ConvBlock",
    "ConvNormAct",
    "IdentitySkip",
    "InceptionBlock",
    "MCSkip",
    "R2Jump",
    "RRCNNBlock",
    "RecurrentConv",
    "RecurrentResidualUnit",
    "SCSELite",
    "conv_block",
    "default_units",
    "make_norm",
    "num_groups",
    "resolve_units",
    "source_levels",
    "split_channels",
]

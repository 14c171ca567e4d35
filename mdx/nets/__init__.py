"""Flax modules: the temporal U-Net denoiser, the context model (encoder, reward, dynamics) and a
GPT-2 style causal transformer."""
from mdx.nets.context import MLP, ContextModel
from mdx.nets.transformer import GPT
from mdx.nets.unet import TemporalUNet, mish, sinusoidal_embedding

__all__ = ['GPT', 'MLP', 'ContextModel', 'TemporalUNet', 'mish', 'sinusoidal_embedding']

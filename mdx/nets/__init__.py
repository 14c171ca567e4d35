"""Flax modules: the temporal U-Net denoiser and the context model (encoder, reward, dynamics)."""
from mdx.nets.context import MLP, ContextModel
from mdx.nets.unet import TemporalUNet, mish, sinusoidal_embedding

__all__ = ['MLP', 'ContextModel', 'TemporalUNet', 'mish', 'sinusoidal_embedding']

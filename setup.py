"""mdx: context-conditioned diffusion planning for offline meta-RL (see setup.cfg)."""
import setuptools

setuptools.setup()

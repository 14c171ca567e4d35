"""Prompt Diffuser (paper 004): a diffusion model that generates the trajectory prompt of a frozen
Prompt-DT. `model.py` holds the generator, the gradient projection and L_DT through the sampling
chain; the training stages (pre-training on training-task prompts, fine-tuning on the few-shot
target data) and the registered method are still to come (issue 16, item 3)."""

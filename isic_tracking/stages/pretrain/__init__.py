"""``pretrain``: an offline pretrained base, trained on formula-driven fractal categories."""

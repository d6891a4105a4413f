"""Studies: the paper's tables and figures end to end — train or reuse the models, evaluate them through the
metric registry, write tables and figures.

    registry.py                  EXPERIMENTS: ``latentprior experiment NAME FILE --out DIR``
    common.py                    what every study does with its models (configs, train or reuse, evaluate or reuse)
    disentanglement.py           Table 1 (separability, PPL, FID in Z_0 and Z_T)
    disentanglement_figures.py   Figs. 6-8 (PCA traversals, attribute directions, rate of change)
    translation.py               Table 2 (image-to-image translation: diversity and quality)
    latent2d.py                  Fig. 2 (the latent distributions of a 2-D flow-prior VAE)

Modules are imported by the command that runs them (they load torch and the models); importing the package
imports nothing else.
"""

__all__: list[str] = []

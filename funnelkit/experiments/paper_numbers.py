"""The paper's numbers (Tables 1, 2, 3, 4 and 8, and the claims of Sec. 4 about speed), as data.

Copied from the paper's text exactly; Table 1's bold marks too (``TABLE1_BOLD``: the entries the
paper prints in bold, "the best model on each measure"; the other tables' are not kept). Each
table keeps the paper's own row and column order. Results files print these beside the kit's
numbers; nothing here is computed.

Notes on the text:

* Table 1 calls its error bars "two standard deviations"; they are two standard errors of the
  mean test log-likelihood (as in MAF and NSF), which is what the kit reports.
* Table 2 rows marked * in the paper (GLOW) are taken by the authors from van den Oord et al.
  and Kingma et al.; Table 3 rows marked * from Ostrovski et al.
* Table 4: the paper gives NSF a latent size of 768; a 28 x 28 MNIST image has 784 values, and a
  dimension-preserving NSF has a latent of 784. Kept as printed.
* Table 8: the NSF row (4,724,430 parameters) also gives the latent size as 768.
"""

TABLE1_DATASETS = ("power", "gas", "hepmass", "miniboone", "bsds300")
TABLE1_MODELS = ("glow", "f-glow", "nsf", "f-nsf", "vae", "f-mlp")

#: Table 1: test log-likelihood in nats (higher is better), (mean, two standard errors).
TABLE1 = {
    "glow": {"power": (0.38, 0.01), "gas": (12.02, 0.02), "hepmass": (-17.22, 0.02),
             "miniboone": (-10.65, 0.45), "bsds300": (156.96, 0.28)},
    "f-glow": {"power": (0.38, 0.01), "gas": (12.03, 0.02), "hepmass": (-18.25, 0.02),
               "miniboone": (-10.58, 0.44), "bsds300": (155.85, 0.85)},
    "nsf": {"power": (0.63, 0.01), "gas": (13.02, 0.02), "hepmass": (-14.92, 0.02),
            "miniboone": (-9.58, 0.48), "bsds300": (157.61, 0.28)},
    "f-nsf": {"power": (0.62, 0.02), "gas": (12.88, 0.02), "hepmass": (-15.07, 0.02),
              "miniboone": (-9.50, 0.48), "bsds300": (156.90, 0.28)},
    "vae": {"power": (0.10, 0.02), "gas": (0.02, 0.05), "hepmass": (-22.00, 0.02),
            "miniboone": (-15.39, 0.49), "bsds300": (143.70, 0.29)},
    "f-mlp": {"power": (0.36, 0.01), "gas": (7.94, 0.03), "hepmass": (-17.80, 0.02),
              "miniboone": (-12.81, 0.55), "bsds300": (153.26, 0.28)},
}
TABLE1_BOLD = {
    ("glow", "power"), ("glow", "hepmass"), ("glow", "bsds300"),
    ("f-glow", "power"), ("f-glow", "gas"), ("f-glow", "miniboone"),
    ("nsf", "power"), ("nsf", "gas"), ("nsf", "hepmass"), ("nsf", "bsds300"),
    ("f-nsf", "miniboone"),
    ("f-mlp", "power"), ("f-mlp", "gas"), ("f-mlp", "hepmass"), ("f-mlp", "miniboone"), ("f-mlp", "bsds300"),
}

#: Table 5: dimension and dimension reduction of the funnels (latent = dimension - reduction).
TABLE5_DIMENSION = {"power": 6, "gas": 8, "hepmass": 21, "miniboone": 43, "bsds300": 63}
TABLE5_REDUCTION = {"power": 2, "gas": 2, "hepmass": 5, "miniboone": 10, "bsds300": 15}

#: Sec. 4 "Tabular Data", the speed claims that Table 1's entry measures.
TABLE1_SPEED_CLAIMS = (
    "the F-MLP takes a similar amount of time to train per training step as the VAE, "
    "which is up to six times faster than the flows considered here",
    "a flow for p(x_{1:m-1} | z) costs up to 20% more time per training step than the baseline "
    "equivalents (a diagonal Gaussian, used for BSDS300, gives a slight speed-up)",
)
F_MLP_SPEED_UP_CLAIM = 6.0
FUNNEL_SLOWDOWN_CLAIM = 1.2

TABLE2_COLUMNS = ("cifar10-5", "cifar10-8", "imagenet64-5", "imagenet64-8")
TABLE2_COLUMN_NAMES = {"cifar10-5": "CIFAR-10 5-bit", "cifar10-8": "CIFAR-10 8-bit",
                       "imagenet64-5": "ImageNet64 5-bit", "imagenet64-8": "ImageNet64 8-bit"}

#: Table 2: test-set bits per dimension and latent size, (bpd, latent size).
TABLE2 = {
    "baseline": {"cifar10-5": (1.70, 3072), "cifar10-8": (3.41, 3072),
                 "imagenet64-5": (1.81, 12288), "imagenet64-8": (3.91, 12288)},
    "nsf": {"cifar10-5": (1.70, 3072), "cifar10-8": (3.38, 3072),
            "imagenet64-5": (1.77, 12288), "imagenet64-8": (3.82, 12288)},
    "f-nsf": {"cifar10-5": (1.71, 192), "cifar10-8": (3.46, 192),
              "imagenet64-5": (1.80, 768), "imagenet64-8": (3.90, 768)},
    "vae": {"cifar10-5": (4.09, 192), "cifar10-8": (7.45, 192),
            "imagenet64-5": (3.72, 768), "imagenet64-8": (6.67, 768)},
    "glow*": {"cifar10-5": (1.67, 3072), "cifar10-8": (3.35, 3072),
              "imagenet64-5": (1.76, 12288), "imagenet64-8": (3.81, 12288)},
}
TABLE2_MODELS = ("nsf", "f-nsf", "vae")  # the rows the kit trains

#: Table 3: CIFAR-10 5-bit, (Inception score, FID); IS higher and FID lower are better.
TABLE3 = {
    "dcgan*": (6.4, 37.1),
    "wgan-gp*": (6.5, 36.4),
    "pixelcnn*": (4.60, 65.93),
    "pixelqn*": (5.29, 49.46),
    "nsf": (4.15, 47.48),
    "f-nsf": (4.95, 45.52),
    "vae": (1.00, 745.0),
}
TABLE3_DECIMALS = {  # as printed: (IS, FID) decimals
    "dcgan*": (1, 1), "wgan-gp*": (1, 1), "pixelcnn*": (2, 2), "pixelqn*": (2, 2),
    "nsf": (2, 2), "f-nsf": (2, 2), "vae": (2, 0),
}
TABLE3_MODELS = ("nsf", "f-nsf", "vae")
TABLE3_SAMPLES = 10_000  # samples at temperature 1 (the authors' code, n_gen)

#: Fig. 4: temperatures and the funnel model the paper shows.
FIG4_TEMPERATURES = (0.5, 0.75, 1.0)
FIG4_CAPTION = ("Samples drawn from a funnel model with a latent space of 48 dimensions and BPD of 3.7 "
                "(top), a VAE with latent dimension 48 (middle), and an NSF model (bottom) for CIFAR-10 5-bit.")

#: Table 4: trained on MNIST; bits/dim on MNIST and Fashion-MNIST and their ratio (F-MNIST / MNIST).
#: Keys (model, latent size); values (MNIST bpd, F-MNIST bpd, ratio).
TABLE4 = {
    ("vae", 4): (7.30, 10.40, 1.42),
    ("vae", 16): (6.95, 12.66, 1.82),
    ("f-nsf", 4): (1.21, 23.42, 19.36),
    ("f-nsf", 16): (1.28, 11.32, 8.84),
    ("f-mlp", 4): (2.86, 30.98, 10.83),
    ("f-mlp", 16): (2.84, 28.59, 10.07),
    ("nsf", 768): (1.10, 4.80, 4.36),
}
TABLE4_FUNNELS = ("f-nsf", "f-mlp")
TABLE4_BASELINES = ("nsf", "vae")
TABLE4_FINDING = ("funnel models significantly improve the difference in the likelihood scores "
                  "(a larger F-MNIST / MNIST bits/dim ratio than NSF and the VAE)")

#: Table 8: parameters of the models of Table 4, keyed (model, latent size).
TABLE8 = {
    ("vae", 4): 1_861_401,
    ("vae", 16): 1_879_857,
    ("f-nsf", 4): 7_286_164,
    ("f-nsf", 16): 5_464_623,
    ("f-mlp", 4): 1_890_324,
    ("f-mlp", 16): 1_888_020,
    ("nsf", None): 4_724_430,  # the paper lists its latent size as 768; an NSF on 28 x 28 images keeps 784
}

__all__ = [
    "F_MLP_SPEED_UP_CLAIM", "FIG4_CAPTION", "FIG4_TEMPERATURES", "FUNNEL_SLOWDOWN_CLAIM",
    "TABLE1", "TABLE1_BOLD", "TABLE1_DATASETS", "TABLE1_MODELS", "TABLE1_SPEED_CLAIMS",
    "TABLE2", "TABLE2_COLUMNS", "TABLE2_COLUMN_NAMES", "TABLE2_MODELS", "TABLE3", "TABLE3_DECIMALS", "TABLE3_MODELS",
    "TABLE3_SAMPLES", "TABLE4", "TABLE4_BASELINES", "TABLE4_FINDING", "TABLE4_FUNNELS", "TABLE5_DIMENSION",
    "TABLE5_REDUCTION", "TABLE8",
]

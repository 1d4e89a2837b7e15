"""Train a VAE on the one-hot pixel data and save the run."""

from configs import VAEConfig, parse_config


def main(argv=None) -> None:
    config = parse_config(VAEConfig, __doc__, argv)
    import training

    training.report(training.train("vae", config))


if __name__ == "__main__":
    main()

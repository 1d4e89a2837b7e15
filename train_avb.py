"""Train Adversarial Variational Bayes on the one-hot pixel data and save the run."""

from configs import AVBConfig, parse_config


def main(argv=None) -> None:
    config = parse_config(AVBConfig, __doc__, argv)
    import training

    training.report(training.train("avb", config))


if __name__ == "__main__":
    main()

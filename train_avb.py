"""Train Adversarial Variational Bayes on the one-hot pixel data and save the run."""

from configs import AVBConfig, parse_config


def main(argv=None) -> None:
    request = parse_config(AVBConfig, __doc__, argv)
    import startup
    import training

    startup.end_process(training.run(request))


if __name__ == "__main__":
    main()

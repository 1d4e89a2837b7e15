"""Train Adversarial Variational Bayes on one-hot pixel images or real binarised digits and save
the run; --contrast adaptive trains AVB+AC."""

from harness import runstart
from harness import startup


def main(argv=None) -> None:
    request = runstart.parse_run("train_avb.py", __doc__, argv)
    from harness import scriptrun   # here, after parsing: --help and usage errors never load TensorFlow

    startup.end_process(scriptrun.run(request))


if __name__ == "__main__":
    main()

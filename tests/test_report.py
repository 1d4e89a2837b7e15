"""The docs' results tables are regenerated from recorded summaries (figures/report.py), the
pages in the repository are what their summaries give, and every link in them resolves."""

import json
import re

import pytest

from figures import report
from tests.conftest import ROOT

SUMMARY = """model,dataset,n_points,seed,log_px,optimum_log_px,train_log_px,elbo,elbo_converged,elbo_lower_bound,elbo_estimated_by_T,posterior_gap,train_seconds,status,error,run_dir
avb,4px,4,0,-1.4,-1.3862943611198906,,-1.5,True,,-1.3,0.1,10.0,finished,,r/a0
vae,4px,4,0,-1.6,-1.3862943611198906,,-1.7,True,,,0.1,5.0,finished,,r/v0
avb,4px,4,1,-1.5,-1.3862943611198906,,-1.75,False,,-1.35,0.25,12.0,finished,,r/a1
vae,4px,4,1,,-1.3862943611198906,,,,,,,,failed,NaN,r/v1
sivi,4px,4,0,-1.45,-1.3862943611198906,,-1.47,True,True,,0.02,8.0,finished,,r/s0
vae,9px,9,0,-2.5,-2.1972245773362196,,-2.6,True,,,0.1,5.0,finished,,r/v9
"""
SOURCE = {"commit": "0123456789abcdef", "machine": "2 cores of a test CPU",
          "date": "2026-12-03", "command": "python sweep.py --models vae avb"}
EXPECTED = """<!-- report:tiny:4px -->
| model | log p(x) | true ELBO | ELBO estimated by T | posterior gap | training time (s) | seeds |
| --- | ---: | ---: | ---: | ---: | ---: | ---: |
| VAE | -1.6000 | -1.7000 |  | 0.1000 | 5.0 | 1 |
| AVB | -1.4500 (-1.5000 to -1.4000) | -1.6250 (-1.7500 to -1.5000) (not converged in some runs: an upper estimate) | -1.3250 (-1.3500 to -1.3000) | 0.1750 (0.1000 to 0.2500) | 11.0 (10.0 to 12.0) | 2 |
| SIVI | -1.4500 | >= -1.4700 |  | 0.0200 | 8.0 | 1 |

From `results/tiny/summary.csv`: `python sweep.py --models vae avb` at commit 0123456 on 2 cores of a test CPU, 2026-12-03. The optimum is -1.3863.
<!-- /report -->
"""


@pytest.fixture
def recorded(tmp_path):
    folder = tmp_path / report.RESULTS / "tiny"
    folder.mkdir(parents=True)
    (folder / "summary.csv").write_text(SUMMARY)
    (folder / "source.json").write_text(json.dumps(SOURCE))
    (tmp_path / "docs").mkdir()
    return tmp_path


def test_a_table_is_regenerated_from_a_recorded_summary(recorded):
    page = recorded / "docs" / "results.md"
    page.write_text("# Results\n\n<!-- report:tiny:4px -->\nstale\n<!-- /report -->\n")
    with pytest.raises(SystemExit) as stale:
        report.main(["--root", str(recorded), "--check"])
    assert stale.value.code == 1
    report.main(["--root", str(recorded)])
    assert page.read_text() == "# Results\n\n" + EXPECTED
    report.main(["--root", str(recorded), "--check"])      # current now: no exit


def test_the_repositorys_pages_are_what_their_summaries_give():
    report.main(["--check"])


LINK = re.compile(r"\]\(([^)#\s]+)(?:#[^)]*)?\)")


def test_every_link_in_the_readme_and_the_docs_resolves():
    pages = report.pages(ROOT)
    assert len(pages) > 5
    broken = [(page.name, target) for page in pages
              for target in LINK.findall(page.read_text())
              if not target.startswith(("http://", "https://"))
              and not (page.parent / target).exists()]
    assert broken == []


def test_the_readme_fits_on_a_few_screens():
    assert len((ROOT / "README.md").read_text().splitlines()) <= 300


def test_every_results_table_in_the_docs_is_one_the_report_writes():
    """A Markdown table outside a report block would be a number copied by hand."""
    hand_made = [page.name for page in report.pages(ROOT)
                 if any(line.startswith("|") for line in
                        report.MARKER.sub("", page.read_text()).splitlines())]
    assert hand_made == []


def test_a_swept_setting_with_several_values_splits_a_models_rows():
    """A grid setting that varies (decoder_width) gives a line per value; one that does not
    (latent_dim) names nothing. The new columns (AIS standard error, BDMC gap) appear."""
    def run(seed, width, log_px):
        return {"model": "vae", "dataset": "digits", "n_points": "", "seed": str(seed),
                "latent_dim": "8", "decoder_width": str(width), "log_px": str(log_px),
                "log_px_stderr": "0.02", "bdmc_gap": "0.1", "optimum_log_px": "",
                "elbo": "-20.0", "elbo_converged": "True", "elbo_lower_bound": "",
                "elbo_estimated_by_T": "", "posterior_gap": "1.0", "train_seconds": "10.0"}
    rows = [run(0, 64, -19.0), run(1, 64, -21.0), run(0, 256, -18.0)]
    table = report.results_table(rows, {"name": "d", **SOURCE}, "digits").splitlines()
    assert table[0].startswith("| model | log p(x) | its AIS standard error | BDMC gap |")
    assert table[2].startswith("| VAE, decoder_width 64 | -20.0000 (-21.0000 to -19.0000) |")
    assert table[3].startswith("| VAE, decoder_width 256 | -18.0000 |")
    assert table[2].endswith("| 2 |") and table[3].endswith("| 1 |")
    assert "latent_dim" not in "\n".join(table)


def test_held_out_and_validation_columns_appear_where_a_summary_has_them():
    rows = [{"model": "vae", "dataset": "digits", "log_px": "-18.0", "optimum_log_px": "",
             "train_log_px": "-17.0", "valid_log_px": "-17.5", "best_step": "5000",
             "elbo": "-19.0", "elbo_converged": "True", "elbo_lower_bound": "",
             "elbo_estimated_by_T": "", "posterior_gap": "1.0", "train_seconds": "10.0"}]
    table = report.results_table(rows, {"name": "d", **SOURCE}, "digits")
    assert table.startswith("| model | log p(x) | training-subset log p(x) | train-test gap "
                            "| validation log p(x) | best step | true ELBO |")
    assert "| VAE | -18.0000 | -17.0000 | 1.0000 | -17.5000 | 5000 | -19.0000 |" in table
    older = [{k: v for k, v in rows[0].items() if k not in ("valid_log_px", "best_step")}]
    assert "best step" not in report.results_table(older, {"name": "d", **SOURCE}, "digits")


def test_a_label_that_names_a_setting_shows_the_models_default_or_the_grids_value():
    row = {"model": "iwae", "dataset": "digits", "seed": "0", "importance_samples": "",
           "log_px": "-18.0", "elbo": "-19.0", "elbo_converged": "True",
           "elbo_lower_bound": "", "posterior_gap": "1.0", "train_seconds": "1.0"}
    assert report.groups([row])[0][0] == "IWAE (K=8)"
    assert report.groups([{**row, "importance_samples": "4"}])[0][0] == "IWAE (K=4)"


def test_a_sweeps_summary_names_the_iwae_by_its_k():
    from figures import sweep_summary
    row = {"model": "iwae", "dataset": "digits", "seed": 0, "importance_samples": "",
           **{k: "" for k in sweep_summary.SUMMARY_METRICS}, "status": "unfinished",
           "error": "", "run_dir": "r"}
    text = sweep_summary.markdown_summary([row], {"importance_samples": ["8"]}, "")
    assert "| IWAE (K=8) | digits | 0 |" in text
    assert "{importance_samples}" not in text

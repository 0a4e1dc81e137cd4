"""Every exported paper printed as a clerk would: LibreOffice → PDF → pdftoppm (PNG).

The files are the writers' real output (the Annex 2 form, a draft's form, the province
workbook, the 催报 list, the work report as DOCX and as its A4 HTML print view). Spreadsheets,
CSV and DOCX go through headless LibreOffice (as an office opens them); the HTML print views
through headless Chromium's print (as a browser prints them). The PDF is read back with poppler: page count and size,
the text on each page, where words sit (``pdftotext -bbox``) and how big they print. The PNGs
land in ``test-artifacts/print/`` to be looked at.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import uuid
from dataclasses import dataclass, replace
from datetime import date
from html import unescape
from pathlib import Path

import pytest

from notifications.templates import make_environment
from workflow.app.reporting import TEMPLATE_DIR
from workflow.domain.figures import Annex2Row, Annex2Table
from workflow.formats.docx_report import write_work_report
from workflow.formats.exports import (
    ANNEX2_ROW_LABELS,
    render_html,
    write_csv,
    write_rows_xlsx,
    write_xlsx,
)
from workflow.store.reports import CHASE_HEADERS

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "print"


def _tools() -> tuple[str, str]:
    soffice = shutil.which("libreoffice") or shutil.which("soffice")
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    missing = [name for name, found in (("LibreOffice", soffice), ("chromium", chromium), ("pdftoppm", shutil.which("pdftoppm")),
                                        ("pdftotext", shutil.which("pdftotext")), ("pdfinfo", shutil.which("pdfinfo")))
               if not found]
    if missing:
        if os.environ.get("REQUIRE_SERVICES") == "1":
            pytest.fail(f"{', '.join(missing)} required (REQUIRE_SERVICES=1) but not installed")
        pytest.skip(f"{', '.join(missing)} not installed")
    assert soffice is not None and chromium is not None
    return soffice, chromium


def table(unit: str, n: int = 1, *, draft: bool = False, note: str | None = "已通过",
          fill: date | None = date(2021, 12, 20)) -> Annex2Table:
    figures = [(1_200 * n + i, 45_419_10 * n + i * 1_000) for i in range(5)]
    return Annex2Table(unit_name=unit, round_label="2021年度",
                       rows=[Annex2Row(label, p, f) for label, (p, f) in zip(ANNEX2_ROW_LABELS, figures, strict=True)],
                       reporter="张三", fill_date=fill, phone="020-83888888", status_note=note, draft=draft)


CITIES = ["广州市总工会", "深圳市总工会", "珠海市总工会", "汕头市总工会", "佛山市总工会", "韶关市总工会",
          "河源市总工会", "梅州市总工会", "惠州市总工会", "汕尾市总工会", "东莞市总工会", "中山市总工会",
          "江门市总工会", "阳江市总工会", "湛江市总工会", "茂名市总工会", "肇庆市总工会", "清远市总工会",
          "潮州市总工会", "揭阳市总工会", "云浮市总工会"]


def work_report_context(*, grassroots: bool = False) -> dict[str, object]:
    return {
        "org_name": "天河一中工会" if grassroots else "广州市总工会", "round_label": "2021年度",
        "state_label": "已汇总", "status_note": "已汇总，未提交", "draft": True, "has_texts": not grassroots,
        "single_union": grassroots,
        "experience": "一是建立消费帮扶台账。\n二是组织基层工会通过粤工惠购平台集中采购。",
        "highlights": "全市基层工会节日慰问品采购中帮扶产品占比明显提高。",
        "rows": [{"label": label, "people": f"{i}.2{i}", "amount": f"{i * 11}.5{i}", "amount_fen": 0}
                 for i, label in enumerate(ANNEX2_ROW_LABELS, start=1)],
        "total_people": "16.15", "total_amount": "166.65", "total_fen": 0,
        "official_text": "官方平台采购占 82.5%",
        "subordinates": [] if grassroots else [
            {"name": "天河区总工会", "highlights": "组织辖区基层工会赴对口帮扶地区采购。", "state_label": "已通过"}],
        "reporter": "张三", "phone": "020-83888888", "fill_date": None,
        "addressee": "天河区总工会" if grassroots else "广东省总工会职工服务部",
        "intro": "根据《关于深化拓展消费帮扶工作的通知》（粤工总〔2021〕17号）要求，现将本单位2021年度消费帮扶工作情况报告如下：",
        "letter_date": date(2021, 12, 24),
    }


def unreported(unit: str, state: str) -> Annex2Table:
    """A unit that has not reported, as the province workbook has it: zeros, its state."""
    return replace(table(unit, note=f"未报送（{state}）"), reported=False,
                   rows=[Annex2Row(label, 0, 0) for label in ANNEX2_ROW_LABELS])


def skewed(unit: str, *, exact: bool = False) -> Annex2Table:
    """A union of 12 and 45 人次, 40 元 a row: in 万 every row is 0.00 and 合计 0.01 (issue 22)."""
    figures = [(12, 4_000), (45, 4_000), (0, 0), (0, 0), (0, 0)]
    return Annex2Table(unit_name=unit, round_label="2021年度", exact=exact,
                       rows=[Annex2Row(label, p, f) for label, (p, f) in zip(ANNEX2_ROW_LABELS, figures, strict=True)],
                       reporter="张三", fill_date=date(2021, 12, 20), phone="020-83888888", status_note="已通过")


@dataclass
class Printed:
    pages: int
    sizes: list[tuple[float, float]]  # points, per page
    text: list[str]  # per page
    words: list[list[tuple[float, float, float, float, str]]]  # per page: xMin, yMin, xMax, yMax, word
    pngs: list[Path]

    def find(self, page: int, word: str) -> list[tuple[float, float, float, float, str]]:
        return [w for w in self.words[page] if word in w[4]]


def _bbox(path: Path) -> list[list[tuple[float, float, float, float, str]]]:
    out = subprocess.run(["pdftotext", "-bbox", str(path), "-"], check=True, capture_output=True, text=True).stdout
    pages: list[list[tuple[float, float, float, float, str]]] = []
    for chunk in out.split("<page ")[1:]:
        words = re.findall(r'<word xMin="([\d.]+)" yMin="([\d.]+)" xMax="([\d.]+)" yMax="([\d.]+)">(.*?)</word>', chunk)
        pages.append([(float(a), float(b), float(c), float(d), unescape(w)) for a, b, c, d, w in words])
    return pages


@pytest.fixture(scope="module")
def printed(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Printed]:
    soffice, chromium = _tools()
    work = tmp_path_factory.mktemp("print")
    env = make_environment(TEMPLATE_DIR)
    chase_rows = [(f"G{i:04d}", f"天河区第{i}中学工会委员会（教职工）", "计划中", "2021-12-20", "是" if i % 3 else "否",
                   f"填报员{i}", f"138{i:08d}", f"020-8388{i:04d}") for i in range(1, 121)]
    files: dict[str, bytes | str] = {
        "annex2.xlsx": write_xlsx([table("广州市总工会")]),
        "draft.xlsx": write_xlsx([table("天河区总工会", draft=True, note="已汇总，未提交", fill=None)]),
        "draft-csv.csv": write_csv(table("天河区总工会", draft=True, note="已汇总，未提交", fill=None)),
        "annex2-form.html": render_html(table("广州市总工会")),
        "province.xlsx": write_xlsx([table(name, i + 1) for i, name in enumerate(CITIES)],
                                    overview_title="2021年度工会消费帮扶情况汇总表"),
        "province-unsubmitted.xlsx": write_xlsx(
            [table(CITIES[0], 1), unreported(CITIES[1], "计划中"),
             table(CITIES[2], 2), unreported(CITIES[3], "已退回")],
            overview_title="2021年度工会消费帮扶情况汇总表",
            unsubmitted=[(CITIES[1], "计划中", "2021年12月20日", "张三", 2), (CITIES[3], "已退回", "2021年12月20日", "", 0)]),
        "chase.xlsx": write_rows_xlsx("天河区总工会2021年度未报送单位催报名单", CHASE_HEADERS, chase_rows),
        "report.docx": write_work_report(work_report_context()),
        "grassroots.docx": write_work_report(work_report_context(grassroots=True)),
        "report-print.html": env.get_template("work_report.html").render(work_report_context()),
        "union-exact.xlsx": write_xlsx([skewed("天河一中工会", exact=True)]),
        "chase-empty.xlsx": write_rows_xlsx("天河区总工会2021年度未报送单位催报名单", CHASE_HEADERS, []),
        "union-exact.html": render_html(skewed("天河一中工会", exact=True)),
        "skewed.xlsx": write_xlsx([skewed("天河区总工会")]),
        "skewed-csv.csv": write_csv(skewed("天河区总工会")),
        "skewed.html": render_html(skewed("天河区总工会")),
    }
    sources = []
    for name, data in files.items():
        path = work / name
        if isinstance(data, str):
            path.write_text(data, encoding="utf-8")
        else:
            path.write_bytes(data)
        sources.append(str(path))
    profile = (work / f"lo-{uuid.uuid4().hex}").as_uri()
    office = [p for p in sources if p.endswith((".xlsx", ".docx"))]
    subprocess.run([soffice, "--headless", f"-env:UserInstallation={profile}", "--convert-to", "pdf",
                    "--outdir", str(work / "pdf"), *office], check=True, capture_output=True, timeout=300)
    # CSV as Chinese Excel users open it: comma-separated, UTF-8 (filter options 44,34,76).
    subprocess.run([soffice, "--headless", f"-env:UserInstallation={profile}",
                    "--infilter=Text - txt - csv (StarCalc):44,34,76", "--convert-to", "pdf",
                    "--outdir", str(work / "pdf"), *[p for p in sources if p.endswith(".csv")]],
                   check=True, capture_output=True, timeout=300)
    for page in (p for p in sources if p.endswith(".html")):
        target = work / "pdf" / (Path(page).stem + ".pdf")
        subprocess.run([chromium, "--headless", "--no-sandbox", "--disable-gpu", "--no-pdf-header-footer",
                        f"--user-data-dir={work / 'chromium'}", f"--print-to-pdf={target}", Path(page).as_uri()],
                       check=True, capture_output=True, timeout=120)
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    out: dict[str, Printed] = {}
    for name in files:  # every file has its own stem: one PDF each
        out[name] = _read(work / "pdf" / (name.rsplit(".", 1)[0] + ".pdf"), name)
    return out


def _read(pdf: Path, name: str) -> Printed:
    assert pdf.exists(), name
    info = subprocess.run(["pdfinfo", "-f", "1", "-l", "999", str(pdf)], check=True, capture_output=True,
                          text=True).stdout
    pages = int(re.search(r"Pages:\s+(\d+)", info).group(1))  # type: ignore[union-attr]
    sizes = [(float(a), float(b)) for a, b in re.findall(r"Page\s+\d+ size:\s+([\d.]+) x ([\d.]+)", info)]
    text = subprocess.run(["pdftotext", "-layout", str(pdf), "-"], check=True, capture_output=True,
                          text=True).stdout.split("\f")[:pages]
    stem = ARTIFACTS / name.replace(".", "_")
    for old in ARTIFACTS.glob(f"{stem.name}-*.png"):
        old.unlink()
    subprocess.run(["pdftoppm", "-r", "60", "-png", str(pdf), str(stem)], check=True, capture_output=True)
    pngs = sorted(ARTIFACTS.glob(f"{stem.name}-*.png"))
    assert len(pngs) == pages
    return Printed(pages, sizes, text, _bbox(pdf), pngs)


A4_PORTRAIT = (595.0, 842.0)


def flat(texts: list[str]) -> str:
    """The pages' text without spaces (pdftotext spaces Latin digits off Chinese)."""
    return re.sub(r"\s+", "", "".join(texts))


def _is_a4(size: tuple[float, float], *, landscape: bool = False) -> bool:
    w, h = size
    want = A4_PORTRAIT[::-1] if landscape else A4_PORTRAIT
    return abs(w - want[0]) < 3 and abs(h - want[1]) < 3


def test_the_annex2_form_prints_on_one_a4_page_labelled_annex_2(printed: dict[str, Printed]) -> None:
    p = printed["annex2.xlsx"]
    assert p.pages == 1 and _is_a4(p.sizes[0])
    text = p.text[0]
    assert "附件2" in text and "工会消费帮扶情况统计表" in text and "单位（公章）：广州市总工会" in text
    assert "合计" in text and "填报人：张三" in text and "填表时间：2021年12月20日" in text
    label, title = p.find(0, "附件2")[0], p.find(0, "工会消费帮扶情况统计表")[0]
    assert label[3] <= title[1] and label[0] < title[0]  # above the title, at the left


def test_a_drafts_form_says_it_is_not_submitted(printed: dict[str, Printed]) -> None:
    for name in ("draft.xlsx", "draft-csv.csv"):
        p = printed[name]
        assert p.pages == 1, name
        text = "".join(p.text)
        assert "未提交" in text and "草稿" in text, (name, text)
        assert re.search(r"填表时间：\s*$", text, re.M), (name, text)  # blank for the hand to fill


def test_the_html_form_prints_like_the_notice(printed: dict[str, Printed]) -> None:
    p = printed["annex2-form.html"]
    assert p.pages == 1 and _is_a4(p.sizes[0])
    assert "附件2" in p.text[0] and "消费总金额或投入总额度(万元)" in p.text[0] and "合计" in p.text[0]


def test_the_province_overview_header_does_not_cover_the_first_row(printed: dict[str, Printed]) -> None:
    p = printed["province.xlsx"]
    assert p.pages == 1 + len(CITIES) and all(_is_a4(s) for s in p.sizes)
    overview = p.text[0]
    assert "2021年度工会消费帮扶情况汇总表" in overview and "合计" in overview
    header_bottom = max(w[3] for w in p.words[0] if w[4] in ("消费总金额或投入总额度", "(万元)", "消费总金额或投入总额度(万元)")
                        or w[4].startswith(("消费总金额", "投入总额度", "(万元)", "额度(万元)")))
    first = p.find(0, "广州市总工会")[0]
    assert header_bottom <= first[1] + 0.5, (header_bottom, first)
    for i, city in enumerate(CITIES, start=1):
        assert city in p.text[i] and "附件2" in p.text[i]


def test_the_chase_list_prints_landscape_readable_with_the_header_on_every_page(printed: dict[str, Printed]) -> None:
    p = printed["chase.xlsx"]
    assert p.pages >= 2 and all(_is_a4(s, landscape=True) for s in p.sizes)
    for page in range(p.pages):
        assert "填报员电话" in p.text[page] and "单位名称" in p.text[page], page
    heights = sorted(w[3] - w[1] for w in p.words[0] if w[4].startswith("G0"))
    assert heights and heights[len(heights) // 2] >= 8.0  # the print is readable, not shrunk to ~5 pt
    assert "G0120" in p.text[-1] and "第 2 页" in p.text[1]


def test_the_work_report_docx_prints_on_a4_with_its_figures_and_seal_line(printed: dict[str, Printed]) -> None:
    p = printed["report.docx"]
    assert 1 <= p.pages <= 2 and all(_is_a4(s) for s in p.sizes)
    text = flat(p.text)
    for words in ("广州市总工会2021年度消费帮扶工作报告", "一、先进经验", "二、工作亮点", "三、消费帮扶情况统计",
                  "四、下级单位工作亮点", "消费总金额或投入总额度(万元)", "166.65", "天河区总工会（已通过）",
                  "填报人：张三", "单位（公章）", "草稿"):
        assert words in text, words
    right = max(w[2] for page in p.words for w in page)
    assert right <= p.sizes[0][0] - 40  # the table fits inside the margins


def test_a_grassroots_work_report_has_no_federation_sections(printed: dict[str, Printed]) -> None:
    text = flat(printed["grassroots.docx"].text)
    assert "一、消费帮扶情况统计" in text and "消费总金额或投入总额度(元)" in text
    assert "先进经验" not in text and "未填写" not in text and "下级单位" not in text


def test_the_work_report_print_view_is_a4(printed: dict[str, Printed]) -> None:
    p = printed["report-print.html"]
    assert 1 <= p.pages <= 2 and all(_is_a4(s) for s in p.sizes)
    text = flat(p.text)
    assert "三、消费帮扶情况统计" in text and "166.65" in text and "合计" in text


# --- issue 22: a union's exact paper, the rounding note in every format, the letter -----------


def test_a_single_unions_annex2_prints_its_exact_figures(printed: dict[str, Printed]) -> None:
    for name in ("union-exact.xlsx", "union-exact.html"):
        p = printed[name]
        text = flat(p.text)
        assert p.pages == 1 and all(_is_a4(s) for s in p.sizes), name
        assert "消费总金额或投入总额度(元)" in text and "(万元)" not in text, name
        assert "粤工惠购平台1240.00" in text and "合计5780.00" in text, (name, text)
        assert "0.01" not in text and "注：各行" not in text, name


def test_the_rounding_note_is_printed_where_rows_and_total_differ(printed: dict[str, Printed]) -> None:
    for name in ("skewed.xlsx", "skewed-csv.csv", "skewed.html"):
        p = printed[name]
        text = flat(p.text)
        assert p.pages == 1, (name, p.pages)
        assert "合计0.010.01" in text, (name, text)
        assert "各行相加为0.00万人次、0.00万元" in text and "两者不同是舍入所致" in text, (name, text)
        assert "精确合计57人次，80.00元" in text, name


def test_the_work_report_is_a_letter_with_addressee_unit_date_and_seal(printed: dict[str, Printed]) -> None:
    for name in ("report.docx", "report-print.html"):
        p = printed[name]
        text = flat(p.text)
        assert text.index("广东省总工会职工服务部：") < text.index("一、先进经验"), name
        assert "粤工总〔2021〕17号" in text and "状态：" not in text, name
        last = flat([p.text[-1]])
        assert "单位（公章）：广州市总工会" in last and "2021年12月24日" in last, name
        seal = [w for w in p.words[-1] if "公章" in w[4]]
        assert seal and seal[0][0] > p.sizes[-1][0] / 2, name  # signed at the right, as a letter is


def test_an_empty_chase_list_prints_none(printed: dict[str, Printed]) -> None:
    p = printed["chase-empty.xlsx"]
    text = flat(p.text)
    assert p.pages == 1 and "催报名单" in text, text
    assert flat([CHASE_HEADERS[-1]]) in text and text.split(flat([CHASE_HEADERS[-1]]), 1)[1].startswith("无"), text


def test_the_province_workbook_lists_unsubmitted_units_on_one_page_not_forms_of_zeros(printed: dict[str, Printed]) -> None:
    """Issue 22 point 15: two of four cities have not reported: the workbook prints the
    overview, the two reported cities' forms and one page listing the other two."""
    p = printed["province-unsubmitted.xlsx"]
    assert p.pages == 4 and all(_is_a4(s) for s in p.sizes)
    assert CITIES[0] in p.text[1] and "附件2" in p.text[1] and CITIES[2] in p.text[2]
    last = flat([p.text[3]])
    assert "附件2" not in last and "2021年度未报送单位" in last
    assert flat(["序号 单位 状态 报送截止 填报人 填报员人数"]) in last
    assert flat([f"1 {CITIES[1]} 计划中 2021年12月20日 张三 2"]) in last
    assert flat([f"2 {CITIES[3]} 已退回 2021年12月20日 0"]) in last
    assert "未报送（计划中）" in flat([p.text[0]])  # the overview still names every unit and its state

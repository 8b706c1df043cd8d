"""Small sites of our own in Chinese, Japanese and German, and an English site with a zh-Hans
translation (issue 33), with questions in each site's language: the fixture of
tests/unit/test_languages.py and of bench/language_quality.py.

Each question names the page (and heading) that answers it, or None when the site does not
cover it (it must be declined). ``evaluate`` runs them through what `bookchat ask` runs: the real
ingest of the site, hybrid retrieval and the offline answerer.
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from ingestion_jobs.embedding import embedder_for_index, get_embedder, site_embedder
from ingestion_jobs.indexer import index_site
from shared.job_models import ChatRequest
from shared.settings import Settings
from shared.vectorstore.edge import EdgeStore
from worker.chat import answer_question
from worker.retrieval import Retriever

__all__ = ["SITES", "SITES_DIR", "Figures", "Question", "evaluate"]

SITES_DIR = Path(__file__).resolve().parent / "docusaurus" / "sites"
_ZH = "i18n/zh-Hans/docusaurus-plugin-content-docs/current/"


@dataclass(frozen=True, slots=True)
class Question:
    text: str
    path: str | None  # the page that answers it; None: the site does not cover it
    heading: str | None = None


SITES: dict[str, list[Question]] = {
    "lang-zh": [
        Question("缓存目录在哪里设置？", "docs/config.md", "缓存目录"),
        Question("请求的超时时间是多少？", "docs/config.md", "超时"),
        Question("九十秒", "docs/config.md", "超时"),
        Question("怎么安装星图？", "docs/intro.md", "安装"),
        Question("如何修改日志级别？", "docs/config.md", "日志级别"),
        Question("上传文件到对象存储之前要配置什么？", "docs/sync.md", "上传到对象存储"),
        Question("同步时发生冲突怎么办？", "docs/sync.md", "冲突处理"),
        Question("怎样设置每天定时同步？", "docs/sync.md", "定时同步"),
        Question("支持团队的邮箱是什么？", "docs/support.md", "联系支持团队"),
        Question("如何报告问题？", "docs/support.md", "报告问题"),
        Question("xingtu init 会创建什么文件？", "docs/intro.md", "初始化项目"),
        Question("红烧肉怎么做？", None),
        Question("明天北京会下雨吗？", None),
    ],
    "lang-ja": [
        Question("インストール方法を教えてください。", "docs/intro.md", "インストール"),
        Question("バックアップの保存期間はどのくらいですか？", "docs/settings.md", "保存期間"),
        Question("圧縮レベルの既定値はいくつですか？", "docs/settings.md", "圧縮"),
        Question(
            "特定のファイルをバックアップから除外するには？", "docs/settings.md", "除外するファイル"
        ),
        Question(
            "バックアップしたファイルを復元するには？", "docs/restore.md", "ファイルを復元する"
        ),
        Question("別の場所に復元できますか？", "docs/restore.md", "別の場所に復元する"),
        Question("料金はいくらですか？", "docs/faq.md", "料金"),
        Question("バックアップは暗号化されますか？", "docs/faq.md", "暗号化"),
        Question(
            "最初のバックアップはどうやって取りますか？", "docs/intro.md", "最初のバックアップ"
        ),
        Question("必要な Node.js のバージョンは？", "docs/intro.md", "インストール"),
        Question("東京の明日の天気は？", None),
        Question("ラーメンの作り方を教えて。", None),
    ],
    "lang-de": [
        Question("Welche Adresse hat der Support?", "docs/hilfe.md", "Kontakt"),
        Question("Wie installiere ich Postbote?", "docs/intro.md", "Installation"),
        Question("Wie oft wird eine Nachricht zugestellt?", "docs/konfiguration.md"),
        Question("Wie groß darf eine Nachricht höchstens sein?", "docs/konfiguration.md"),
        Question("Wo werden die Protokolle gespeichert?", "docs/konfiguration.md"),
        Question("Sind die Verbindungen verschlüsselt?", "docs/sicherheit.md", "Verschlüsselung"),
        Question("Wo wird das Passwort gespeichert?", "docs/sicherheit.md", "Zugangsdaten"),
        Question("Wie melde ich einen Fehler?", "docs/hilfe.md", "Fehler melden"),
        Question("Wo liegt die Konfigurationsdatei?", "docs/intro.md", "Erste Schritte"),
        Question(
            "Wie lange wartet Postbote zwischen zwei Zustellversuchen?", "docs/konfiguration.md"
        ),
        Question("Wie backe ich einen Apfelkuchen?", None),
        Question("Wer hat die Fußball-Weltmeisterschaft 2014 gewonnen?", None),
    ],
    "lang-en-zh": [
        Question("How do I install the agent?", "docs/intro.md", "Install the agent"),
        Question("How long are metrics kept on the free plan?", "docs/retention.md"),
        Question("When does a CPU alert fire?", "docs/alerts.md", "Alert thresholds"),
        Question("How do I add a Slack channel for alerts?", "docs/alerts.md"),
        Question("How do I export my metrics to CSV?", "docs/retention.md", "Exporting data"),
        Question("How do I connect the server to the dashboard?", "docs/intro.md"),
        Question("如何安装代理？", _ZH + "intro.md", "安装代理"),
        Question("免费版的指标保留多久？", _ZH + "retention.md", "指标保留多久"),
        Question("CPU 告警什么时候触发？", _ZH + "alerts.md", "告警阈值"),
        Question("怎么添加通知渠道？", _ZH + "alerts.md", "通知渠道"),
        Question("如何导出数据？", _ZH + "retention.md", "导出数据"),
        Question("怎样连接仪表盘？", _ZH + "intro.md", "连接仪表盘"),
        Question("How do I bake sourdough bread?", None),
        Question("怎么做饺子？", None),
    ],
}


@dataclass(slots=True)
class Figures:
    """One site's scores: retrieval hit@1 (by page) and offline answers citing an expected
    page, over its answerable questions; declines over the questions it does not cover."""

    site: str
    answerable: int = 0
    hits_at_1: int = 0
    cited: int = 0
    uncovered: int = 0
    declined: int = 0
    misses: list[str] = field(default_factory=list)

    @property
    def hit_at_1(self) -> float:
        return self.hits_at_1 / self.answerable if self.answerable else 0.0

    @property
    def cited_rate(self) -> float:
        return self.cited / self.answerable if self.answerable else 0.0


async def evaluate(site: str, settings: Settings) -> Figures:
    """Index ``site`` (a folder of SITES_DIR) with the embedder ``settings`` choose for it into
    a scratch embedded store, then ask each of its questions as `bookchat ask` does."""
    figures = Figures(site)
    with tempfile.TemporaryDirectory() as data:
        store = EdgeStore(Path(data))
        try:
            index_site(
                SITES_DIR / site,
                store=store,
                embedder=site_embedder(settings),
                collection="bookchat",
            )
            retriever = Retriever(
                store,
                get_embedder(settings),
                "bookchat",
                follow_index=lambda stored: embedder_for_index(settings, stored),
            )
            for question in SITES[site]:
                answer = await answer_question(
                    ChatRequest(message=question.text), settings=settings, retriever=retriever
                )
                cited = {str(c["path"]) for c in answer.citations}
                if question.path is None:
                    figures.uncovered += 1
                    figures.declined += answer.refused and not cited
                    if not answer.refused:
                        figures.misses.append(f"answered: {question.text} -> {sorted(cited)}")
                    continue
                figures.answerable += 1
                top = retriever.search(question.text, limit=5)
                hit = bool(top) and top[0].path == question.path
                figures.hits_at_1 += hit
                figures.cited += not answer.refused and question.path in cited
                if not hit:
                    first = top[0].path if top else "-"
                    figures.misses.append(f"hit@1: {question.text} -> {first}")
                if answer.refused or question.path not in cited:
                    got = sorted(cited) or "declined"
                    figures.misses.append(f"answer: {question.text} -> {got}")
        finally:
            store.close()
    return figures

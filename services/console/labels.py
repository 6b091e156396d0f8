"""The console's words in Chinese and English (CONTRACT §14): one table, ``label(key, lang)``.

The language is the one chosen with ``?lang=zh|en`` (kept in the session), else the browser's
``Accept-Language`` (Chinese first when it asks for any ``zh``), else Chinese — the console's users are a Chinese
city's staff and residents. A key without a translation is an error in the tests, never a blank on a page.
"""

from __future__ import annotations

from typing import Final

__all__ = ["LABELS", "LANGUAGES", "choose_language", "label"]

LANGUAGES: Final = ("zh", "en")

LABELS: Final[dict[str, tuple[str, str]]] = {
    # key: (中文, English)
    "app": ("人口信息平台控制台", "renkou console"),
    "login": ("登录", "Log in"),
    "logout": ("退出", "Log out"),
    "account": ("账号", "Account"),
    "password": ("密码", "Password"),
    "bad_login": ("账号或密码不正确", "Wrong account name or password"),
    "locked": ("登录失败次数过多，请 15 分钟后再试", "Too many failed logins; try again in 15 minutes"),
    "status": ("运行状态", "Status"),
    "lag": ("积压", "Lag"),
    "total_lag": ("总积压（事件）", "Total lag (events)"),
    "topic": ("主题", "Topic"),
    "partition": ("分区", "Partition"),
    "checkpoint": ("检查点", "Checkpoint"),
    "log_end": ("日志末端", "Log end"),
    "last_batch": ("最近一批", "Last batch"),
    "never": ("从未", "never"),
    "schemas": ("投影模式", "Projection schemas"),
    "events": ("事件", "Events"),
    "dead_letters": ("死信", "Dead letters"),
    "pending": ("待处理", "Pending"),
    "all": ("全部", "All"),
    "reason": ("原因", "Reason"),
    "coordinates": ("位置", "Coordinates"),
    "failed_at": ("失败时间", "Failed at"),
    "redriven_at": ("重投时间", "Re-driven at"),
    "applied": ("已应用", "Applied"),
    "not_applied": ("未应用", "Not applied"),
    "redrive": ("重投", "Re-drive"),
    "redrive_confirm": (
        "将此记录重新发布到其部门主题？事件编号不变，只会应用一次。",
        "Publish this record again to its department's topic? Its event ID stays, so it applies once.",
    ),
    "confirm": ("确认", "Confirm"),
    "cancel": ("取消", "Cancel"),
    "redriven": ("已重投", "Re-driven"),
    "value": ("记录内容", "Record"),
    "headers": ("记录头", "Headers"),
    "jobs": ("重放 / 校验 / 切换", "Replay / verify / swap"),
    "replay": ("重放", "Replay"),
    "verify": ("校验", "Verify"),
    "swap": ("切换", "Swap"),
    "shadow": ("影子模式", "Shadow schema"),
    "start": ("开始", "Start"),
    "job": ("任务", "Job"),
    "running": ("运行中", "running"),
    "succeeded": ("成功", "succeeded"),
    "failed": ("失败", "failed"),
    "progress": ("进度", "Progress"),
    "result": ("结果", "Result"),
    "identical": ("一致", "Identical"),
    "different": ("不一致", "Different"),
    "started_by": ("发起人", "Started by"),
    "differences_cli": (
        "不一致的记录涉及居民数据，请用 `renkou verify` 查看。",
        "The differing rows hold residents' data: `renkou verify` lists them.",
    ),
    "timeline": ("审计时间线", "Audit timeline"),
    "citizen_id": ("公民身份号码", "Citizen ID"),
    "purpose": ("用途", "Purpose"),
    "show": ("查看", "Show"),
    "occurred": ("发生时间", "Occurred"),
    "recorded": ("登记时间", "Recorded"),
    "department": ("部门", "Department"),
    "event_type": ("事件类型", "Event type"),
    "chain": ("哈希链", "Hash chain"),
    "chain_intact": ("哈希链完整", "Every chain intact"),
    "chain_broken": ("哈希链被破坏", "Chain broken"),
    "grants": ("授权", "Grants"),
    "grant_name": ("名称", "Name"),
    "sections": ("数据项", "Sections"),
    "expires": ("到期", "Expires"),
    "revoked": ("已撤销", "Revoked"),
    "revoke": ("撤销", "Revoke"),
    "revoke_confirm": ("撤销此授权？其令牌立即失效。", "Revoke this grant? Its token stops working at once."),
    "add_grant": ("新增授权", "Add a grant"),
    "purposes_help": (
        "每行一个：用途=数据项,数据项（例如 school_enrollment=identity,hukou）",
        "One per line: purpose=section,section (e.g. school_enrollment=identity,hukou)",
    ),
    "token_once": ("令牌只显示这一次，请妥善交给使用方：", "The token is shown this once; hand it to the consumer:"),
    "access_log": ("访问记录", "Access log"),
    "consumer": ("使用方", "Consumer"),
    "since": ("起", "From"),
    "until": ("止", "Until"),
    "search": ("查询", "Search"),
    "read_purpose": ("查询用途（记入被查询者的访问记录）", "Why you look (in each resident's access log)"),
    "accessed_at": ("访问时间", "Accessed at"),
    "endpoint": ("接口", "Endpoint"),
    "refused": ("被拒绝的访问", "Refused reads"),
    "refused_at": ("拒绝时间", "Refused at"),
    "request": ("请求", "Request"),
    "why": ("原因", "Why"),
    "actions": ("控制台操作记录", "Console actions"),
    "actor": ("操作人", "Who"),
    "action": ("操作", "Action"),
    "target": ("对象", "Target"),
    "outcome": ("结果", "Outcome"),
    "when": ("时间", "When"),
    "none": ("无", "none"),
    "forbidden": ("您的角色无权执行此操作", "Your role may not do this"),
    "auditor_note": ("审计员只能查看，不能更改", "Auditors may look, not change"),
    "me": ("我的数据", "My data"),
    "me_login": ("使用城市统一身份认证登录", "Log in with the city's identity provider"),
    "me_intro": (
        "查看登记在人口信息平台中的您本人的数据，以及谁在何时、为何读取了它们。",
        "See your own data in the population register, and who read it, when and why.",
    ),
    "my_view": ("我的登记信息", "My record"),
    "who_read": ("谁读取了我的数据", "Who read my data"),
    "no_reads": ("尚无人读取您的数据", "Nobody has read your data yet"),
    "not_registered": ("人口信息平台中没有您的登记信息", "Nothing is recorded about you in the register"),
    "idp_title": ("本地身份认证（演示）", "Local identity provider (demo)"),
    "idp_note": (
        "演示用身份认证：真实部署中此处是城市的统一身份认证平台（实名核验）。",
        "A demo identity provider: a real deployment sends you to the city's identity provider (real-name check).",
    ),
    "continue": ("继续", "Continue"),
    "bad_token": ("身份令牌无效", "The identity token is not valid"),
    "bad_request": ("请求有误", "Bad request"),
    "not_found": ("未找到", "Not found"),
    "csrf": ("页面已过期，请返回重试", "This page has expired; go back and try again"),
    "back": ("返回", "Back"),
    "language": ("English", "中文"),
    "unavailable": ("暂时无法访问依赖服务", "A dependency is unavailable"),
    "role": ("角色", "Role"),
}


def label(key: str, lang: str) -> str:
    zh, en = LABELS[key]
    return en if lang == "en" else zh


def choose_language(chosen: str | None, accept_language: str | None) -> str:
    """``chosen`` when it is one we speak; else Chinese unless the browser asks for English before any Chinese."""
    if chosen in LANGUAGES:
        return str(chosen)
    for part in (accept_language or "").lower().split(","):
        tag = part.split(";")[0].strip()
        if tag.startswith("zh"):
            return "zh"
        if tag.startswith("en"):
            return "en"
    return "zh"

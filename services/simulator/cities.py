"""The five seed cities of renkou as data: divisions, schools, clinics, employers, names and policies.

Each city is one of the municipalities whose hukou-reform plan is in ``/work/shared/seeds`` (see DOMAIN.md):
Xining 西宁, Nantong 南通, Chengdu 成都, Feicheng 肥城 and Liaoyuan 辽源. The simulator draws everything it
writes into an event from here, so that every code is real (division codes exist in python-stdnum's GB/T 2260
data), every employer code is a valid unified social credit code of the city, and names look like names.

Division codes change over time: 南通县 became 通州市 and then 通州区, Chengdu's 东城区/西城区 became 锦江区,
青羊区 and 成华区 in 1990. A ``District`` therefore carries its code *history*, and the simulator uses the code in
force in the year that matters (the year a citizen ID was assigned, the year of an event), which is exactly what
makes old citizen IDs with abolished division codes valid (CONTRACT §5).

Employers are invented; their codes are derived from their names (valid, stable, but no real organisation's).
Universities carry real names, with school codes of the simulator's own making.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Final

from stdnum.cn import uscc

from events.fields import Department

__all__ = [
    "CITIES",
    "ETHNIC_SURNAMES",
    "GIVEN_FEMALE",
    "GIVEN_MALE",
    "TIBETAN_NAMES",
    "City",
    "District",
    "Employer",
    "city_by_key",
    "is_urban",
    "unified_social_credit_code",
]


# -------------------------------------------------------------------------------------------------------------
# Building blocks
# -------------------------------------------------------------------------------------------------------------


def is_urban(place: str) -> bool:
    """Whether a street or town is urban: streets (街道) are, towns (镇) and townships (乡) are not."""
    return place.endswith("街道")


@dataclass(frozen=True, slots=True)
class District:
    """A county-level division of a city (区, 县 or 县级市) with the history of its GB/T 2260 code.

    ``codes`` holds ``(first_year, code, name)`` in ascending order; the first entry also applies to every
    year before its ``first_year``. ``places`` are its streets (街道, urban) and towns (镇/乡, rural; see
    ``is_urban``): the simulator puts addresses, schools and clinics there.
    """

    codes: tuple[tuple[int, str, str], ...]
    places: tuple[str, ...]
    weight: int = 10
    """Relative share of the city's households living here."""

    @property
    def code(self) -> str:
        """The code in force today."""
        return self.codes[-1][1]

    @property
    def name(self) -> str:
        """The name in force today."""
        return self.codes[-1][2]

    def code_in(self, year: int) -> str:
        """The GB/T 2260 code in force in ``year``."""
        codes = self.codes
        for index in range(len(codes) - 1, 0, -1):
            if codes[index][0] <= year:
                return codes[index][1]
        return codes[0][1]

    def name_in(self, year: int) -> str:
        """The name in force in ``year``."""
        codes = self.codes
        for index in range(len(codes) - 1, 0, -1):
            if codes[index][0] <= year:
                return codes[index][2]
        return codes[0][2]


@dataclass(frozen=True, slots=True)
class Employer:
    """An employer registered in the city: name, unified social credit code, district and relative size."""

    name: str
    code: str
    district: int
    """Index into the city's ``districts``."""
    weight: int = 10


@dataclass(frozen=True, slots=True)
class City:
    """One seed city with everything the simulator needs to write plausible events about its residents."""

    key: str
    """Short ASCII name (``"chengdu"``)."""
    name: str
    """Chinese name as written in addresses and school names (``"成都市"``)."""
    address_prefix: str
    """Province and prefecture as they start an address (``"四川省成都市"``, ``"山东省泰安市"``)."""
    region_code: str
    """The city's own GB/T 2260 code, used as ``source.region_code`` of its departments' events."""
    systems: Mapping[Department, str]
    """Name of each department's system (``source.system``)."""
    districts: tuple[District, ...]
    school_prefix: str
    """School codes are this prefix, the last four digits of the district code, and a two-digit number."""
    clinic_prefix: str
    """Clinic codes are this prefix, the district code and a five-digit number."""
    employers: tuple[Employer, ...]
    universities: tuple[tuple[str, int], ...]
    """Institutions of higher education: ``(name, district index)``; may be empty."""
    vocational_schools: tuple[tuple[str, int], ...]
    surnames: tuple[str, ...]
    """Common family names of the region."""
    ethnicities: tuple[tuple[str, int], ...]
    """``(ethnicity, weight)``: the ethnic make-up of the native population."""
    origins: tuple[str, ...]
    """Division codes of the counties the city's migrant workers typically come from (all still in use)."""
    settlement_reasons: tuple[tuple[str, int], ...]
    """``(hukou.registered reason, weight)`` for migrants settling under the city's plan."""
    reform_year: int
    """Year of the city's hukou-reform plan (the seed document): the agricultural distinction ends."""
    permit_since: int
    """First year the city issued residence permits (居住证)."""
    wage_2006: int
    """Average monthly contribution base in CNY in 2006; later years grow from it."""
    weight: int
    """Relative share of simulated households."""


def _gb11714_check(stem: str) -> str:
    """The check character of an 8-character organisation code (GB 11714-1997)."""
    weights = (3, 7, 9, 10, 5, 8, 4, 2)
    total = sum((int(c) if c.isdigit() else ord(c) - 55) * w for c, w in zip(stem, weights, strict=True))
    value = 11 - total % 11
    return "X" if value == 10 else "0" if value == 11 else str(value)


_USCC_ALPHABET: Final = "0123456789ABCDEFGHJKLMNPQRTUWXY"


def unified_social_credit_code(name: str, district_code: str, *, kind: str = "91") -> str:
    """A valid 18-character unified social credit code (GB 32100-2015) for an employer of the simulation.

    ``kind`` is the registering authority and entity type (``91`` enterprise, ``12`` public institution); the
    region part is ``district_code``; the organisation code is derived from ``name`` (stable across runs and
    machines: a hash, never Python's randomised ``hash``) and carries its own GB 11714 check character.
    """
    digest = hashlib.sha256(name.encode()).digest()
    body = "".join(_USCC_ALPHABET[b % len(_USCC_ALPHABET)] for b in digest[:6])
    # Codes issued since 2015 carry an organisation code starting with "MA"; older public bodies kept digits.
    stem = ("MA" + body) if kind.startswith("9") else "".join(str(b % 10) for b in digest[:8])
    organisation = stem + _gb11714_check(stem)
    first17 = f"{kind}{district_code}{organisation}"
    return first17 + uscc.calc_check_digit(first17 + "0")


def _split(words: str) -> tuple[str, ...]:
    """A word list written as one space-separated string, to keep the tables short."""
    return tuple(words.split())


def _district(history: str, places: str, weight: int) -> District:
    """A district from compact text: its code history (``"632124湟中县 1999:630122湟中县 2019:630106湟中区"``,
    later entries prefixed with their first year) and its streets and towns separated by spaces."""
    codes: list[tuple[int, str, str]] = []
    for entry in history.split():
        year, _, rest = entry.rpartition(":")
        codes.append((int(year) if year else 0, rest[:6], rest[6:]))
    return District(tuple(codes), _split(places), weight)


def _employers(
    city_districts: tuple[District, ...], rows: tuple[tuple[str, int, int, str], ...]
) -> tuple[Employer, ...]:
    """Employers from ``(name, district index, weight, USCC kind)`` rows, their codes derived (valid, stable)."""
    return tuple(
        Employer(
            name=name,
            code=unified_social_credit_code(name, city_districts[district].code, kind=kind),
            district=district,
            weight=weight,
        )
        for name, district, weight, kind in rows
    )


# -------------------------------------------------------------------------------------------------------------
# Names
# -------------------------------------------------------------------------------------------------------------

GIVEN_MALE: Final[dict[str, tuple[str, ...]]] = {
    # Given names follow fashions: 建国 and 卫东 for the parents' generation, 子轩 and 浩然 for the children.
    "old": tuple("建国军民华明福德志文忠海林春生永平胜利世宝学庆祥荣贵新长兴振和"),
    "mid": tuple("伟强磊军勇杰涛明超刚平辉鹏华飞鑫波斌健俊峰亮龙东斌坤宁晓"),
    "new": tuple("子轩浩然宇航博文睿泽梓晨一铭俊熙皓嘉奕辰宸锦昊天佑逸安瑞霖"),
}
GIVEN_FEMALE: Final[dict[str, tuple[str, ...]]] = {
    "old": tuple("秀英桂兰玉珍凤芝淑华云梅翠琴素芳兰香珠金莲荣春霞"),
    "mid": tuple("芳娜敏静丽艳娟霞燕萍红玲琳雪慧婷颖倩丹洁莉晶蕾薇"),
    "new": tuple("梓涵欣怡诗雨可馨思语若晴一诺子萱悦彤佳琪雅晗沐瑶依"),
}
TIBETAN_NAMES: Final[tuple[str, ...]] = _split(
    "扎西 卓玛 才让 多杰 拉毛 索南 央金 尼玛 措姆 旦增 德吉 仁青 桑杰 卓嘎 更登 吉毛 东智 拉姆 闹吾 完玛"
)
"""Tibetan names have no family name; a person's name is usually two of these."""

ETHNIC_SURNAMES: Final[dict[str, tuple[str, ...]]] = {
    "回族": ("马", "马", "马", "韩", "冶", "沙", "白", "穆", "丁", "杨"),
    "撒拉族": ("韩", "韩", "马", "马", "冶"),
    "满族": ("关", "佟", "那", "富", "赵", "金", "王", "张"),
    "朝鲜族": ("金", "金", "李", "朴", "崔", "郑", "尹", "姜"),
}
"""Family names typical of an ethnicity, where they differ from the city's Han ones."""

# -------------------------------------------------------------------------------------------------------------
# The five cities
# -------------------------------------------------------------------------------------------------------------

_XINING_DISTRICTS: Final = (
    _district("630102城东区", "东关大街街道 清真巷街道 大众街街道 周家泉街道 火车站街道 八一路街道", 18),
    _district("630103城中区", "人民街街道 南滩街道 仓门街街道 礼让街街道 饮马街街道 南川东路街道", 18),
    _district("630104城西区", "西关大街街道 古城台街道 虎台街道 胜利路街道 兴海路街道 文汇路街道", 16),
    # 城北区 was formed from the suburban district (郊区) in 1986.
    _district("630111郊区 1986:630105城北区", "朝阳街道 小桥大街街道 马坊街道 火车西站街道 大堡子镇", 14),
    # 湟中 moved from 海东地区 to Xining in 1999 and became a district in 2019.
    _district("632124湟中县 1999:630122湟中县 2019:630106湟中区", "鲁沙尔镇 多巴镇 甘河滩镇 上新庄镇 田家寨镇", 12),
    _district("630121大通回族土族自治县", "桥头镇 城关镇 塔尔镇 东峡镇 黄家寨镇 长宁镇", 12),
    _district("632125湟源县 1999:630123湟源县", "城关镇 大华镇 东峡乡 和平乡", 6),
)

_NANTONG_DISTRICTS: Final = (
    _district(
        "320602崇川区 2020:320613崇川区",
        "城东街道 和平桥街道 任港街道 新城桥街道 虹桥街道 学田街道 钟秀街道 文峰街道",
        20,
    ),
    # 港闸区 was merged into 崇川区 (new code 320613) in 2020.
    _district("320611港闸区 2020:320613崇川区", "唐闸镇街道 天生港镇街道 秦灶街道 陈桥街道", 10),
    _district("320624南通县 1993:320683通州市 2009:320612通州区", "金沙街道 二甲镇 石港镇 刘桥镇 平潮镇 兴仁镇", 14),
    _district("320625海门县 1994:320684海门市 2020:320614海门区", "海门街道 三厂街道 常乐镇 悦来镇 四甲镇", 12),
    _district("320623如东县", "掘港街道 栟茶镇 洋口镇 丰利镇 岔河镇", 10),
    _district("320622如皋县 1991:320682如皋市", "如城街道 白蒲镇 林梓镇 磨头镇 搬经镇", 12),
    _district("320626启东县 1989:320681启东市", "汇龙镇 南阳镇 北新镇 吕四港镇 寅阳镇", 10),
    _district("320621海安县 2018:320685海安市", "海安街道 城东镇 曲塘镇 李堡镇 角斜镇", 10),
)

_CHENGDU_DISTRICTS: Final = (
    # The 1990 reorganisation split 东城区 and 西城区 (and the old 金牛区 code) into today's five central districts.
    _district(
        "510102东城区 1990:510104锦江区",
        "督院街街道 盐市口街道 春熙路街道 书院街街道 合江亭街道 牛市口街道 沙河街道",
        14,
    ),
    _district("510103西城区 1990:510105青羊区", "少城街道 草市街街道 府南街道 光华街道 金沙街道 苏坡街道", 14),
    _district("510111金牛区 1990:510106金牛区", "西安路街道 抚琴街道 营门口街道 茶店子街道 九里堤街道 荷花池街道", 16),
    _district("510111金牛区 1990:510107武侯区", "玉林街道 浆洗街街道 望江路街道 红牌楼街道 簇桥街道 火车南站街道", 16),
    _district("510102东城区 1990:510108成华区", "猛追湾街道 双桥子街道 府青路街道 跳蹬河街道 保和街道 龙潭街道", 14),
    _district("510112龙泉驿区", "龙泉街道 大面街道 十陵街道 洛带镇 西河街道", 8),
    _district("510122双流县 2015:510116双流区", "东升街道 西航港街道 九江街道 黄甲街道 彭镇", 10),
    _district("510124郫县 2016:510117郫都区", "郫筒街道 犀浦街道 团结街道 安德街道 唐昌街道", 8),
    _district("510121金堂县", "赵镇街道 淮口街道 五凤镇 竹篙镇 土桥镇", 6),
    _district("510129大邑县", "晋原街道 安仁镇 新场镇 花水湾镇 王泗镇", 5),
)

_FEICHENG_DISTRICTS: Final = (
    # 肥城 is a county-level city: no districts, its streets and towns sit directly under one code.
    _district(
        "370922肥城县 1992:370983肥城市",
        "新城街道 老城街道 王瓜店街道 仪阳街道 潮泉镇 桃园镇 王庄镇 湖屯镇 石横镇 安临站镇 孙伯镇 安驾庄镇 "
        "边院镇 汶阳镇",
        10,
    ),
)

_LIAOYUAN_DISTRICTS: Final = (
    _district("220402龙山区", "向阳街道 南康街道 东吉街道 西宁街道 北寿街道 寿山镇", 16),
    _district("220403西安区", "仙城街道 东山街道 福寿街道 富国街道 灯塔镇", 12),
    _district("220421东丰县", "东丰镇 大阳镇 横道河镇 那丹伯镇 猴石镇", 10),
    _district("220422东辽县", "白泉镇 渭津镇 安石镇 辽河源镇 泉太镇", 10),
)

_HAN_NORTHWEST: Final = tuple("王李张刘陈杨赵马孙朱祁鲁吕魏韩何郭胡董冯")
_HAN_JIANGSU: Final = tuple("王陈张朱徐李顾施周黄吴陆沈钱杨曹季缪范葛")
_HAN_SICHUAN: Final = tuple("王李张刘陈杨黄赵周吴徐罗何唐蒋邓谢曾冯廖")
_HAN_SHANDONG: Final = tuple("王李张刘陈杨赵孙徐马尹侯宋吕尚于孟高程许")
_HAN_JILIN: Final = tuple("王李张刘赵孙杨于陈高徐马郭宋韩姜曲潘邢隋")

CITIES: Final[tuple[City, ...]] = (
    City(
        key="xining",
        name="西宁市",
        address_prefix="青海省西宁市",
        region_code="630100",
        systems={
            "public_security": "xnga-hukou",
            "education": "xnedu-xueji",
            "social_security": "xnrs-shebao",
            "health": "xnwj-jiankang",
        },
        districts=_XINING_DISTRICTS,
        school_prefix="2163",
        clinic_prefix="PDY",
        employers=_employers(
            _XINING_DISTRICTS,
            (
                ("青海昆仑盐湖化工有限公司", 4, 12, "91"),
                ("西宁高原牧业食品有限公司", 3, 10, "91"),
                ("青海雪域藏毯有限公司", 0, 8, "91"),
                ("西宁夏都建设工程有限公司", 2, 12, "91"),
                ("青海湟水商贸有限公司", 1, 10, "91"),
                ("西宁市城中区人民医院", 1, 6, "12"),
                ("青海三江源物流有限公司", 5, 8, "91"),
                ("西宁河湟餐饮管理有限公司", 0, 10, "91"),
            ),
        ),
        universities=(("青海大学", 3), ("青海师范大学", 2), ("青海民族大学", 0)),
        vocational_schools=(("西宁市第一职业中学", 1), ("青海建筑职业技术学院", 3)),
        surnames=_HAN_NORTHWEST,
        ethnicities=(("汉族", 700), ("回族", 160), ("藏族", 60), ("土族", 45), ("撒拉族", 15), ("蒙古族", 10)),
        origins=("630202", "630203", "630225", "632221", "632223", "632224", "620102", "622921"),
        settlement_reasons=(
            ("stable_employment", 30),
            ("stable_residence", 30),
            ("talent", 8),
            ("graduate", 10),
            ("family_reunion", 15),
            ("other", 3),
        ),
        reform_year=2015,
        permit_since=2016,
        wage_2006=1400,
        weight=18,
    ),
    City(
        key="nantong",
        name="南通市",
        address_prefix="江苏省南通市",
        region_code="320600",
        systems={
            "public_security": "ntga-hukou",
            "education": "ntedu-xueji",
            "social_security": "ntrs-shebao",
            "health": "ntwj-jiankang",
        },
        districts=_NANTONG_DISTRICTS,
        school_prefix="2132",
        clinic_prefix="PDY",
        employers=_employers(
            _NANTONG_DISTRICTS,
            (
                ("南通濠河纺织科技有限公司", 0, 12, "91"),
                ("南通江海船舶重工有限公司", 1, 14, "91"),
                ("南通通州湾家纺有限公司", 2, 12, "91"),
                ("海门叠石桥家纺城有限公司", 3, 10, "91"),
                ("南通三建集团工程有限公司", 5, 14, "91"),
                ("如东洋口港物流有限公司", 4, 8, "91"),
                ("南通市第一人民医院", 0, 6, "12"),
                ("启东吕四港水产有限公司", 6, 8, "91"),
                ("海安电子元件有限公司", 7, 10, "91"),
            ),
        ),
        universities=(("南通大学", 0), ("南通职业大学", 1), ("江苏工程职业技术学院", 0)),
        vocational_schools=(("南通中等专业学校", 0), ("南通航运职业技术学院", 1)),
        surnames=_HAN_JIANGSU,
        ethnicities=(("汉族", 995), ("回族", 3), ("满族", 2)),
        origins=("320723", "320921", "321322", "321323", "340826", "341221", "410526", "511321"),
        settlement_reasons=(
            ("stable_residence", 40),
            ("stable_employment", 35),
            ("family_reunion", 15),
            ("graduate", 6),
            ("talent", 4),
        ),
        reform_year=2020,
        permit_since=2011,
        wage_2006=1800,
        weight=22,
    ),
    City(
        key="chengdu",
        name="成都市",
        address_prefix="四川省成都市",
        region_code="510100",
        systems={
            "public_security": "cdga-hukou",
            "education": "cdedu-xueji",
            "social_security": "cdrs-shebao",
            "health": "cdwj-jiankang",
        },
        districts=_CHENGDU_DISTRICTS,
        school_prefix="2151",
        clinic_prefix="PDY",
        employers=_employers(
            _CHENGDU_DISTRICTS,
            (
                ("成都锦城物流有限公司", 3, 10, "91"),
                ("成都天府软件科技有限公司", 6, 14, "91"),
                ("成都蜀都电子有限公司", 2, 12, "91"),
                ("成都宽窄巷餐饮管理有限公司", 1, 12, "91"),
                ("成都龙泉汽车配件有限公司", 5, 10, "91"),
                ("成都锦江宾馆服务有限公司", 0, 8, "91"),
                ("成都市第三人民医院", 1, 6, "12"),
                ("成都双流航空服务有限公司", 6, 8, "91"),
                ("成都郫都川菜调味品有限公司", 7, 8, "91"),
                ("成都建工住宅工程有限公司", 4, 14, "91"),
            ),
        ),
        universities=(
            ("四川大学", 3),
            ("电子科技大学", 4),
            ("西南交通大学", 2),
            ("西南财经大学", 1),
            ("成都大学", 5),
        ),
        vocational_schools=(("成都市财贸职业高级中学", 2), ("成都工业职业技术学院", 7)),
        surnames=_HAN_SICHUAN,
        ethnicities=(("汉族", 980), ("藏族", 10), ("彝族", 5), ("回族", 5)),
        origins=("511321", "511381", "510781", "511922", "512021", "511123", "513433", "511621", "500229"),
        settlement_reasons=(
            ("points", 35),
            ("talent", 20),
            ("graduate", 15),
            ("stable_employment", 10),
            ("family_reunion", 15),
            ("stable_residence", 5),
        ),
        reform_year=2017,
        permit_since=2010,
        wage_2006=1700,
        weight=35,
    ),
    City(
        key="feicheng",
        name="肥城市",
        address_prefix="山东省泰安市",
        region_code="370983",
        systems={
            "public_security": "fcga-hukou",
            "education": "fcedu-xueji",
            "social_security": "fcrs-shebao",
            "health": "fcwj-jiankang",
        },
        districts=_FEICHENG_DISTRICTS,
        school_prefix="2137",
        clinic_prefix="PDY",
        employers=_employers(
            _FEICHENG_DISTRICTS,
            (
                ("肥城桃都食品有限公司", 0, 10, "91"),
                ("肥城矿业机械有限公司", 0, 12, "91"),
                ("肥城石横特钢有限公司", 0, 14, "91"),
                ("肥城佛桃文化旅游有限公司", 0, 6, "91"),
                ("肥城市人民医院", 0, 6, "12"),
                ("肥城汶阳田农业科技有限公司", 0, 8, "91"),
            ),
        ),
        universities=(),
        vocational_schools=(("肥城市职业中等专业学校", 0), ("肥城市高级技工学校", 0)),
        surnames=_HAN_SHANDONG,
        ethnicities=(("汉族", 995), ("回族", 5)),
        origins=("370921", "370923", "370982", "371522", "371525", "371723", "410526"),
        settlement_reasons=(
            ("stable_residence", 35),
            ("stable_employment", 30),
            ("graduate", 8),
            ("veteran", 5),
            ("collective", 7),
            ("family_reunion", 15),
        ),
        reform_year=2016,
        permit_since=2016,
        wage_2006=1300,
        weight=12,
    ),
    City(
        key="liaoyuan",
        name="辽源市",
        address_prefix="吉林省辽源市",
        region_code="220400",
        systems={
            "public_security": "lyga-hukou",
            "education": "lyedu-xueji",
            "social_security": "lyrs-shebao",
            "health": "lywj-jiankang",
        },
        districts=_LIAOYUAN_DISTRICTS,
        school_prefix="2122",
        clinic_prefix="PDY",
        employers=_employers(
            _LIAOYUAN_DISTRICTS,
            (
                ("辽源袜业纺织有限公司", 1, 12, "91"),
                ("辽源矿业机电有限公司", 0, 10, "91"),
                ("辽源东辽河农产品有限公司", 3, 8, "91"),
                ("东丰梅花鹿业有限公司", 2, 8, "91"),
                ("辽源市中心医院", 0, 6, "12"),
                ("辽源龙山商贸有限公司", 0, 10, "91"),
            ),
        ),
        universities=(("辽源职业技术学院", 0),),
        vocational_schools=(("辽源市职业技术学校", 1),),
        surnames=_HAN_JILIN,
        ethnicities=(("汉族", 900), ("满族", 70), ("朝鲜族", 20), ("回族", 5), ("蒙古族", 5)),
        origins=("220523", "220524", "220581", "220122", "222401", "222405", "211321", "230183"),
        settlement_reasons=(
            ("talent", 25),
            ("graduate", 20),
            ("return", 15),
            ("stable_residence", 20),
            ("family_reunion", 15),
            ("stable_employment", 5),
        ),
        reform_year=2015,
        permit_since=2016,
        wage_2006=1200,
        weight=13,
    ),
)
"""The five seed cities, in the order of the seed documents."""


def city_by_key(key: str) -> City:
    """The seed city with short name ``key`` (``"xining"``, ``"nantong"``…); raises ``KeyError``."""
    for city in CITIES:
        if city.key == key:
            return city
    raise KeyError(f"unknown city {key!r}; known: {', '.join(c.key for c in CITIES)}")

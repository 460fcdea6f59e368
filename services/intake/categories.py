"""The catalogue of police incident categories. Pure data and lookups: no I/O.

Each category says how urgent it is by default, which units it needs, its time targets, how
near in space and time another report must be to describe the same event, and whether it is
sensitive (the public tracker shows nothing beyond "received" until an officer allows it).

Where two categories overlap, the rule the labels follow:

- a child as victim (hit, neglected, exploited or sexually abused) is `child_abuse`, whoever
  the offender is; sexual offences against adults are `sexual_offence`; violence between
  spouses or other members of one household is `domestic_violence`;
- theft with violence or the threat of it (begal, jambret, rampok, todong) is `street_robbery`,
  even when the thing taken is a motorcycle; a vehicle taken without violence is
  `vehicle_theft`; entering a house, shop or office to steal is `burglary`;
- a person who is hurt and alive is `assault`; a death is `homicide`; gunfire is `shooting`;
- one group against another is `brawl`; a crowd making a demand is `demonstration`;
  drunkenness, noise, extortion by thugs (premanisme, pungli) are `public_order`.

Keywords feed services.intake.classify. Their small syntax, after the classifier's own
normalisation (lower case, slang expanded, see classify.py):

- `kebakaran`: one word; `pencuri*`: any word starting so;
- `unjuk rasa`: words in this order, at most two other words between them, within one clause;
- `motor|mobil hilang|dicuri`: alternatives at one position;
- `anak & dipukul`: both within a few words of each other, in either order, within one clause.

`keywords` are strong evidence; `weak_keywords` are hints that decide only when nothing
stronger is said (e.g. `hilang` alone leans to lost goods; `api` alone to fire).
"""
from __future__ import annotations

from dataclasses import dataclass, field

UNCLASSIFIED = "unclassified"

GROUPS = ("persons", "property", "traffic", "public_order", "disaster", "lost_goods", "assistance", "non_emergency")
PRIORITIES = ("P1", "P2", "P3", "P4")


@dataclass(frozen=True)
class UnitNeed:
    """One line of a response plan: `count` units of `kind`, with these capabilities."""

    kind: str  # a schemas.events.UnitKind
    count: int = 1
    capabilities: tuple[str, ...] = ()


@dataclass(frozen=True)
class TimeTargets:
    """Seconds from the report: first unit dispatched, first unit on scene."""

    dispatch_s: int
    on_scene_s: int


@dataclass(frozen=True)
class Category:
    code: str
    name: str  # Bahasa Indonesia, as officers say it
    group: str  # persons | property | traffic | public_order | disaster | lost_goods | assistance | non_emergency
    priority: str  # P1..P4
    response_plan: tuple[UnitNeed, ...]
    targets: TimeTargets
    duplicate_radius_m: float
    duplicate_window_s: int
    sensitive: bool = False
    keywords: tuple[str, ...] = field(default=(), repr=False)
    weak_keywords: tuple[str, ...] = field(default=(), repr=False)


# Time targets by priority (reference points, configurable later; see DOMAIN.md).
P1 = TimeTargets(dispatch_s=60, on_scene_s=10 * 60)
P2 = TimeTargets(dispatch_s=3 * 60, on_scene_s=20 * 60)
P3 = TimeTargets(dispatch_s=10 * 60, on_scene_s=60 * 60)
P4 = TimeTargets(dispatch_s=60 * 60, on_scene_s=24 * 3600)
# A request for assistance needs a recorded decision quickly (DOMAIN.md, accountability), but
# going out itself is usually planned: decide within minutes, be there within the hour.
ASSISTANCE = TimeTargets(dispatch_s=5 * 60, on_scene_s=60 * 60)

PATROL = UnitNeed("car")
PATROL_FIRST_AID = UnitNeed("car", 1, ("first_aid",))
MOTORCYCLE = UnitNeed("motorcycle", 1, ("rapid_response",))
RESKRIM = UnitNeed("reskrim", 1, ("investigation",))
INAFIS = UnitNeed("inafis", 1, ("identification",))
LANTAS = UnitNeed("lantas", 1, ("traffic",))

MIN = 60

CATEGORIES: tuple[Category, ...] = (
    # --- crimes against persons ------------------------------------------------------------
    Category(
        "homicide", "Pembunuhan / penemuan mayat", "persons", "P1",
        (PATROL, UnitNeed("reskrim", 1, ("olah_tkp",)), INAFIS), P1, 500, 120 * MIN,
        keywords=(
            "pembunuhan", "membunuh", "dibunuh", "terbunuh", "pembunuh", "mayat", "jenazah", "jasad",
            "tewas", "mati dibunuh", "korban jiwa", "ditemukan meninggal|tewas|mati|membusuk",
            "ditemukan tak|tidak bernyawa",
            "tidak bernyawa", "tak bernyawa", "sampai|hingga mati|tewas|meninggal",
            "meninggal di tempat|lokasi", "tewas di tempat|lokasi", "mutilasi", "dimutilasi",
            "ditusuk|dibacok|dibunuh|dipukuli & meninggal|tewas|mati",
            "bersimbah & meninggal|tewas|mati|tergeletak",
        ),
        weak_keywords=("meninggal", "mati", "tergeletak", "kuburan"),
    ),
    Category(
        "assault", "Penganiayaan / pengeroyokan", "persons", "P2",
        (PATROL_FIRST_AID,), P2, 300, 60 * MIN,
        keywords=(
            "penganiayaan", "dianiaya", "menganiaya", "aniaya", "dipukul", "dipukuli", "memukul", "memukuli",
            "pemukulan", "dikeroyok", "mengeroyok", "pengeroyokan", "keroyok", "ditusuk", "menusuk",
            "penusukan", "dibacok", "membacok", "pembacokan", "ditikam", "ditonjok", "ditinju", "ditendang",
            "ditampar", "babak belur", "bonyok", "disabet", "dilukai", "melukai", "disiram air keras",
            "dihajar", "menghajar", "digebuk*", "dijotos", "berkelahi", "perkelahian", "duel", "carok",
        ),
        weak_keywords=("luka", "terluka", "memar", "berdarah", "bocor", "lebam", "benjol", "pisau", "golok"),
    ),
    Category(
        "sexual_offence", "Kekerasan seksual / pelecehan / pencabulan", "persons", "P2",
        (PATROL, RESKRIM), P2, 300, 120 * MIN, sensitive=True,
        keywords=(
            "pelecehan", "dilecehkan", "melecehkan", "pelecehan seksual", "kekerasan seksual", "perkosa*",
            "diperkosa", "memperkosa", "pemerkosaan", "cabul", "dicabuli", "mencabuli", "pencabulan",
            "diraba", "meraba", "diraba raba", "digerayangi", "menggerayangi", "dicolek", "eksibisionis",
            "alat kelamin", "kelamin", "onani", "masturbasi", "begal payudara", "persetubuhan",
            "disetubuhi", "video asusila|porno|pribadi|syur", "foto bugil|telanjang", "sebar video",
            "asusila", "sextortion", "kbgo", "menggesek*", "mesum", "rudapaksa", "dirudapaksa",
        ),
        weak_keywords=("seksual", "bugil", "telanjang", "payudara", "intip", "tubuh"),
    ),
    Category(
        "child_abuse", "Kekerasan terhadap anak / penelantaran / eksploitasi anak", "persons", "P2",
        (PATROL, RESKRIM), P2, 300, 120 * MIN, sensitive=True,
        keywords=(
            "kekerasan terhadap|pada anak", "kekerasan anak", "penganiayaan anak", "penelantaran anak",
            "eksploitasi anak", "pencabulan anak", "pelecehan anak", "pedofil", "pedofilia", "perlindungan anak",
            "anak|balita|bayi|bocah|murid|siswa|siswi|keponakan|cucu|bocah & dipukul|dipukuli|disiksa"
            "|dianiaya|ditendang|dicubit|disundut|disetrika|dikurung|dirantai|dicabuli|dilecehkan|diperkosa"
            "|disetubuhi|diraba|dipaksa|diseret|dijual|dieksploitasi|dianiaya|ditelantarkan|ditinggal|dibuang",
            "menyiksa|menganiaya|mencabuli|memukuli|menelantarkan|menjual & anak|balita|bayi|bocah|murid|siswi",
            "anak|balita|bayi & ditinggal|ditelantarkan|dibiarkan", "bayi dibuang", "buang bayi", "pembuangan bayi",
            "ibu|ayah|bapak tiri",
            "guru ngaji|les", "pekerja anak",
        ),
        weak_keywords=("anak", "balita", "bayi", "bocah", "sd", "smp", "tk", "paud", "murid", "siswa", "siswi",
                       "tiri", "kecil", "nangis", "menangis"),
    ),
    Category(
        "domestic_violence", "Kekerasan dalam rumah tangga (KDRT)", "persons", "P2",
        (PATROL_FIRST_AID,), P2, 150, 120 * MIN, sensitive=True,
        keywords=(
            "kdrt", "kekerasan dalam rumah tangga", "kekerasan rumah tangga",
            "suami|istri|suaminya|istrinya|pasangan|mertua|menantu & dipukul|dipukuli|memukul|memukuli|dianiaya"
            "|menganiaya|ditampar|menampar|ditendang|menendang|dicekik|mencekik|dijambak|menjambak|mengamuk"
            "|melempar|dilempar|menyiksa|disiksa|mengancam|diancam|diusir|mengusir|menyeret|diseret|kasar",
            "dipukul|dipukuli|ditampar|dianiaya & suami|istri|mertua|menantu",
            "bertengkar|ribut|cekcok & suami|istri", "pertengkaran suami istri", "rumah tangga",
            "teriak|menjerit|jerit & ampun", "minta ampun",
        ),
        weak_keywords=("suami", "istri", "mertua", "menantu", "ampun", "piring pecah", "cerai"),
    ),
    Category(
        "kidnapping", "Penculikan / penyanderaan / perampasan kemerdekaan", "persons", "P1",
        (UnitNeed("car", 2), RESKRIM), P1, 1000, 120 * MIN,
        keywords=(
            "culik", "diculik", "menculik", "penculikan", "penculik", "sandera", "disandera", "menyandera",
            "penyanderaan", "tebusan", "uang tebusan", "dibawa paksa", "membawa paksa", "dipaksa masuk",
            "ditarik|diseret|didorong|dipaksa masuk mobil", "dimasukkan ke|dalam mobil", "disekap", "menyekap",
            "penyekapan", "dilarikan orang", "perampasan kemerdekaan", "dijemput paksa", "trafficking",
            "perdagangan orang", "tppo",
        ),
        weak_keywords=("paksa", "mobil", "seret", "diseret", "menyeret"),
    ),
    Category(
        "missing_person", "Orang hilang", "persons", "P2",
        (PATROL,), P2, 2000, 120 * MIN,
        keywords=(
            "orang hilang", "hilang kontak", "anak|adik|kakak|ibu|ayah|bapak|kakek|nenek|suami|istri|putri|putra"
            "|balita|bocah|keluarga|teman|saudara|cucu|keponakan|lansia|pria|wanita|perempuan hilang",
            "belum|tidak pulang", "belum|tidak kembali", "tak pulang", "tidak ada kabar", "tak ada kabar",
            "tanpa kabar", "hilang sejak", "terpisah dari", "belum ketemu|ditemukan", "tidak ketemu|ditemukan",
            "pergi dari rumah", "kabur dari rumah", "minggat", "pikun", "demensia", "gangguan jiwa|mental",
            "terakhir terlihat", "ciri ciri", "mencari keluarga|anak|orang", "nyasar", "tersesat",
            "hp|ponsel tidak aktif",
        ),
        weak_keywords=("terpisah", "mencari", "pamit", "umur", "usia", "memakai", "pakai baju", "kaos", "baju"),
    ),
    Category(
        "shooting", "Penembakan / letusan senjata api", "persons", "P1",
        (UnitNeed("car", 2), RESKRIM, INAFIS), P1, 1000, 60 * MIN,
        keywords=(
            "tembak", "ditembak", "menembak", "tembakan", "penembakan", "penembak", "senjata api", "senpi",
            "pistol", "revolver", "senapan", "airsoft gun", "air gun", "peluru", "selongsong", "letusan",
            "suara letusan", "dor", "dor dor", "peluru nyasar", "tertembak", "kena tembak", "senjata rakitan",
        ),
        weak_keywords=("senjata", "meletus", "ledakan"),
    ),
    # --- property -------------------------------------------------------------------------
    Category(
        "street_robbery", "Pencurian dengan kekerasan (begal, jambret, perampokan)", "property", "P2",
        (MOTORCYCLE, PATROL), P2, 500, 60 * MIN,
        keywords=(
            "begal", "dibegal", "membegal", "pembegalan", "pembegal", "jambret", "dijambret", "menjambret",
            "penjambretan", "penjambret", "rampok", "dirampok", "merampok", "perampok", "perampokan",
            "rampas", "dirampas", "merampas", "perampasan", "ditodong", "menodong", "penodongan", "todong",
            "curas", "pencurian dengan kekerasan", "direbut", "merebut", "ditarik paksa", "dipepet",
            "diambil paksa", "mengambil paksa", "dipalak", "malak", "pemalakan",
            "diancam & pisau|celurit|golok|senjata|sajam", "mengancam & pisau|celurit|golok|sajam",
        ),
        weak_keywords=("celurit", "bersenjata", "sajam", "paksa", "kabur", "boncengan", "bermotor"),
    ),
    Category(
        "vehicle_theft", "Pencurian kendaraan bermotor (curanmor)", "property", "P3",
        (PATROL,), P3, 300, 60 * MIN,
        keywords=(
            "curanmor", "ranmor", "pencurian motor|mobil|kendaraan", "maling motor|mobil",
            "motor|mobil|kendaraan|ranmor|truk|pickup|angkot|bajaj|vespa & hilang|dicuri|digondol|raib|lenyap"
            "|dimaling|dicolong|diembat|dibobol|digasak",
            "motor|mobil|kendaraan|ranmor dibawa|digondol kabur|lari",
            "membawa|dibawa kabur|lari motor|mobil|kendaraan",
            "motor|mobil|kendaraan tidak|tak ada",
            "mencuri|membobol|menggondol|maling|mencongkel|merusak & motor|mobil|kendaraan",
            "kunci t", "kunci leter t", "kunci palsu", "kunci setang|stang", "bobol kunci", "penadah",
        ),
        weak_keywords=("motor", "mobil", "parkiran", "parkir", "nopol", "plat", "kunci"),
    ),
    Category(
        "theft", "Pencurian biasa", "property", "P3",
        (PATROL,), P3, 300, 60 * MIN,
        keywords=(
            "pencurian", "dicuri", "mencuri", "pencuri", "curi", "kecurian", "maling", "kemalingan",
            "dimaling", "dicolong", "mencolong", "colong", "digondol", "menggondol", "diembat", "digasak",
            "diambil orang", "mengambil tanpa izin", "penggelapan", "digelapkan", "menggelapkan",
            "nyolong", "ngembat", "raib", "dibawa orang",
        ),
        weak_keywords=("diambil", "mengambil", "lenyap"),
    ),
    Category(
        "burglary", "Pencurian dengan pemberatan (rumah / toko / kantor dibobol)", "property", "P3",
        (PATROL, INAFIS), P3, 200, 120 * MIN,
        keywords=(
            "dibobol", "membobol", "pembobolan", "bobol", "dicongkel", "mencongkel", "dijebol",
            "dibongkar paksa", "disatroni", "menyatroni", "curat", "pencurian dengan pemberatan",
            "rumah|kos|kontrakan|toko|kantor|ruko|warung|gudang|kamar|rumahnya|sekolah & dibobol|dimasuki|kemasukan"
            "|disatroni|dibongkar|kemalingan|digasak|diacak",
            "maling|pencuri & masuk|naik|masuki|memasuki", "lewat|melalui atap|jendela|plafon|genteng",
            "pintu|jendela|gembok|teralis|plafon|atap & dicongkel|dirusak|dijebol|dibobol|terbuka|kebuka|rusak",
            "diacak acak", "berantakan", "brankas", "dibongkar",
        ),
        weak_keywords=("masuk rumah|kamar|toko|kantor|ruko", "jendela", "pintu", "gembok", "mudik", "kosong", "laci",
                       "lemari"),
    ),
    Category(
        "pickpocketing", "Pencopetan", "property", "P3",
        (MOTORCYCLE,), P3, 300, 60 * MIN,
        keywords=(
            "copet", "dicopet", "mencopet", "pencopet", "pencopetan", "kecopetan", "nyopet", "disilet",
            "menyilet", "tas|saku|kantong & disilet|dirobek|disobek", "jambret saku", "komplotan copet",
            "berdesakan|berdesak|desakan & hilang|raib|diambil", "saku|kantong & hilang|raib",
        ),
        weak_keywords=("saku", "kantong", "desak desakan", "berdesakan", "keramaian", "antre", "antri"),
    ),
    Category(
        "fraud", "Penipuan / penggelapan (termasuk online)", "property", "P4",
        (), P4, 100, 30 * MIN,
        keywords=(
            "penipuan", "tipu", "ditipu", "menipu", "tertipu", "penipu", "kena tipu", "modus", "scam", "scammer",
            "penipuan online", "transfer|bayar & kabur|diblokir|memblokir|menghilang",
            "barang tidak|belum dikirim|datang|sampai",
            "sudah transfer", "sudah kirim uang", "investasi bodong", "bodong", "arisan bodong", "hipnotis",
            "gendam", "digendam", "dihipnotis", "kode otp", "otp", "phising", "phishing", "link|tautan palsu",
            "akun palsu", "mengaku polisi|petugas|bank|pejabat|kurir", "menang undian|hadiah", "undian palsu",
            "pinjol", "pinjaman online", "rekening & dikuras|terkuras|dibobol|kosong",
            "saldo & dikuras|terkuras|hilang",
            "dibajak", "diretas", "hack", "dihack", "dp & kabur", "wanprestasi", "cek kosong",
            "jual beli online", "olshop", "online shop", "kirim|transfer & disuruh|diminta", "diminta transfer",
            "minta transfer|pulsa", "pesugihan", "gandakan uang", "kartu & ditukar",
        ),
        weak_keywords=("transfer", "rekening", "saldo", "atm", "online", "undian", "investasi", "setor", "pinjam",
                       "penjual", "pembeli", "akun", "instagram", "facebook", "marketplace"),
    ),
    Category(
        "vandalism", "Perusakan / vandalisme", "property", "P3",
        (PATROL,), P3, 300, 120 * MIN,
        keywords=(
            "perusakan", "pengrusakan", "dirusak", "merusak", "dirusakin", "vandal", "vandalisme",
            "dipecahkan", "memecahkan", "dipecah", "pecahin", "dilempar batu", "melempar batu", "dicoret",
            "dicorat coret", "corat coret", "coretan", "grafiti", "graffiti", "pilox", "digores", "baret",
            "digembosi", "dikempesi", "ditendangi", "dibakar orang", "merusakkan",
            "kaca & dipecah|dipecahkan|dilempar|dilempari",
        ),
        weak_keywords=("rusak", "pecah", "iseng", "cat", "tembok", "kaca", "batu", "pagar", "bangku", "lampu"),
    ),
    # --- traffic --------------------------------------------------------------------------
    Category(
        "traffic_accident", "Kecelakaan lalu lintas (laka lantas)", "traffic", "P1",
        (UnitNeed("lantas", 1, ("accident_investigation",)), PATROL_FIRST_AID), P1, 400, 60 * MIN,
        keywords=(
            "kecelakaan", "laka", "lakalantas", "laka lantas", "kecelakaan lalu lintas", "tabrakan", "bertabrakan",
            "ditabrak", "menabrak", "tertabrak", "tabrak", "tabrak lari", "diserempet", "menyerempet", "serempet",
            "terguling", "terbalik", "terjungkal", "tergelincir", "terperosok", "masuk jurang|sungai|kali|got",
            "adu banteng", "beruntun", "jatuh dari motor", "jatuh sendiri", "motor jatuh", "pemotor|pengendara jatuh",
            "pejalan & ditabrak|tertabrak|tertemper", "ditemper", "kena tabrak", "korban laka",
            "motor|mobil|truk|bus|angkot vs motor|mobil|truk|bus|angkot|pejalan",
        ),
        weak_keywords=("ambulans", "ambulance", "terjepit", "patah", "pengendara", "pemotor", "penyok", "ringsek"),
    ),
    Category(
        "traffic_jam", "Kemacetan / gangguan arus lalu lintas", "traffic", "P3",
        (LANTAS,), P3, 1500, 120 * MIN,
        keywords=(
            "macet", "kemacetan", "macet total", "macet parah", "kemacetan panjang", "antrian|antrean kendaraan",
            "tersendat", "padat merayap", "tidak bergerak", "stuck", "lampu lalu lintas mati|rusak|padam",
            "lampu merah|bangjo mati|rusak|padam", "traffic light mati|rusak", "pengaturan lalu lintas",
            "mengatur lalu lintas",
            "atur lalu lintas", "polisi & ngatur|mengatur|atur", "arus lalu lintas",
            "lalu lintas kacau|lumpuh|padat|macet",
            "mogok & jalan|tol|tengah|lajur", "parkir liar", "jalan tertutup|ditutup", "pengalihan arus",
            "saling serobot", "contraflow", "ganjil genap",
        ),
        weak_keywords=("mogok", "lalu lintas", "kendaraan", "antrean", "antrian", "serobot"),
    ),
    # --- public order ---------------------------------------------------------------------
    Category(
        "drugs", "Narkoba", "public_order", "P3",
        (PATROL, RESKRIM), P3, 300, 120 * MIN,
        keywords=(
            "narkoba", "narkotika", "napza", "sabu", "sabu sabu", "nyabu", "shabu", "ganja", "gele", "cimeng",
            "ekstasi", "inex", "pil koplo", "koplo", "tramadol", "excimer", "obat terlarang", "obat keras",
            "putau", "heroin", "kokain", "tembakau gorila", "sinte", "pesta narkoba", "pesta sabu", "bandar narkoba",
            "bandar", "pengedar", "mengedarkan", "kurir narkoba", "bong", "nge fly", "ngefly", "teler", "sakau",
            "methamphetamine", "psikotropika", "lem aibon", "ngelem",
        ),
        weak_keywords=("pil", "transaksi", "paket", "daun kering", "serbuk", "fly"),
    ),
    Category(
        "brawl", "Tawuran / bentrokan massa", "public_order", "P1",
        (UnitNeed("car", 2, ("crowd_control",)), MOTORCYCLE), P1, 800, 60 * MIN,
        keywords=(
            "tawuran", "tawur", "bentrok", "bentrokan", "perang sarung", "perang batu", "saling serang",
            "menyerang kampung", "serang kampung", "nyerang", "menyerang", "saling lempar", "lempar lemparan",
            "perkelahian massal", "perkelahian antar|antarkelompok", "antar pelajar|sekolah|kampung|warga|geng|kelompok"
            "|ormas|suporter|remaja", "antarwarga", "antarpelajar", "geng motor", "gengster", "gangster",
            "kelompok & bentrok|serang|menyerang|berkelahi", "suporter & bentrok|ricuh|rusuh", "massa bentrok",
        ),
        weak_keywords=("kelompok", "pelajar", "massa", "serang", "suporter", "siaga", "ricuh", "gir", "sajam",
                       "senjata tajam", "celurit", "samurai", "klewang", "pedang"),
    ),
    Category(
        "public_order", "Gangguan ketertiban umum / keributan", "public_order", "P3",
        (PATROL,), P3, 300, 60 * MIN,
        keywords=(
            "keributan", "ribut ribut", "bikin ribut", "membuat keributan", "onar", "membuat onar", "rusuh",
            "kerusuhan", "mabuk", "mabok", "miras", "minuman keras", "oplosan", "ciu", "pemabuk", "mabuk mabukan",
            "gangguan ketertiban", "mengganggu ketertiban", "mengganggu warga", "ganggu warga", "meresahkan",
            "resahkan", "premanisme", "preman", "pungli", "pungutan liar", "pemalakan", "memalak", "minta jatah",
            "juru parkir liar", "jukir liar", "musik keras|kencang", "berisik", "bising", "sound system",
            "teriak teriak", "cekcok", "adu mulut", "percekcokan", "adu jotos", "balap liar", "balapan liar",
            "knalpot brong|racing", "judi", "perjudian", "judi online", "sabung ayam", "prostitusi", "psk",
            "pengamen & memaksa|maksa|marah", "mengamuk", "ngamuk", "odgj", "memaksa minta uang", "ormas",
            "memungut uang",
        ),
        weak_keywords=("ribut", "teriak", "ganggu", "resah", "pengamen"),
    ),
    Category(
        "demonstration", "Unjuk rasa / aksi massa", "public_order", "P2",
        (UnitNeed("car", 2, ("crowd_control",)), LANTAS), P2, 2000, 120 * MIN,
        keywords=(
            "demo", "demonstrasi", "demonstran", "unjuk rasa", "pengunjuk rasa", "berunjuk rasa", "aksi massa",
            "aksi demo", "aksi damai", "orasi", "long march", "mogok kerja", "mogok massal", "menuntut", "tuntutan",
            "menolak & penggusuran|kebijakan|kenaikan|uu|ruu|pembangunan", "memblokir jalan", "blokir jalan",
            "menduduki", "massa & berkumpul|mengepung|menduduki|memadati|menggeruduk|datangi", "konvoi & kantor",
            "menggeruduk", "geruduk", "bakar ban", "spanduk", "audiensi", "massa aksi", "buruh", "mahasiswa & aksi",
        ),
        weak_keywords=("massa", "ribuan", "ratusan", "kantor", "gedung", "dpr", "dprd", "balai kota", "konvoi",
                       "berkumpul", "pendukung", "mahasiswa"),
    ),
    Category(
        "suspicious_activity", "Orang / barang / kendaraan mencurigakan", "public_order", "P3",
        (UnitNeed("motorcycle", 1, ("patrol",)),), P3, 300, 60 * MIN,
        keywords=(
            "mencurigakan", "orang asing", "dikenal & mondar|keliling|mengawasi|memotret|foto",
            "mondar mandir", "mengintip", "ngintip", "diintip", "mengawasi rumah", "memantau rumah", "dibuntuti",
            "membuntuti", "diikuti orang", "dikuntit", "menguntit", "penguntit",
            "tas|koper|paket|bungkusan|ransel|kardus & ditinggal|ditinggalkan|tergeletak",
            "tak|tidak|tanpa bertuan|pemilik", "tidak ada pemilik",
            "tak bertuan", "benda mencurigakan", "bom", "teror", "teroris", "tanpa plat|nopol", "tidak berplat",
            "memotret rumah", "foto foto rumah", "survei rumah", "gerak gerik", "gelagat",
        ),
        weak_keywords=("curiga", "asing", "keliling", "mengawasi", "sering", "kompleks", "tengah malam"),
    ),
    # --- disasters ------------------------------------------------------------------------
    Category(
        "fire", "Kebakaran", "disaster", "P1",
        (PATROL,), P1, 1000, 120 * MIN,
        keywords=(
            "kebakaran", "terbakar", "dilalap api", "dilahap api", "dilalap si jago merah", "jago merah",
            "api membesar", "kobaran api", "api berkobar", "berkobar", "asap tebal|hitam|mengepul|membubung",
            "damkar", "pemadam", "pemadam kebakaran", "hangus", "ludes terbakar", "ludes", "korsleting", "konslet",
            "korslet", "hubungan arus pendek", "percikan api", "tabung & meledak|terbakar", "gosong",
            "api & merambat|merembet|menjalar|membesar|menyambar", "kebakar", "kobong",
        ),
        weak_keywords=("api", "asap", "bakar", "membakar", "panas", "meledak", "ledakan"),
    ),
    Category(
        "flood", "Banjir / genangan / rob", "disaster", "P2",
        (UnitNeed("car", 1, ("transport",)),), P2, 2000, 6 * 3600,
        keywords=(
            "banjir", "kebanjiran", "banjir rob", "rob", "banjir bandang", "genangan", "tergenang",
            "menggenang", "terendam", "merendam", "air naik|masuk|meluap|setinggi|sepinggang|sedada|selutut|sebetis",
            "meluap", "luapan", "tanggul & jebol|bocor|runtuh", "jebol", "setinggi lutut|pinggang|dada|paha",
            "sepinggang", "selutut", "sedada", "pintu air", "kali|sungai & meluap|naik", "evakuasi & warga|banjir",
            "jalanan|jalan kayak|seperti kali|sungai|danau",
        ),
        weak_keywords=("air", "hujan", "hujan deras", "lutut", "pinggang", "evakuasi", "perahu", "mogok"),
    ),
    Category(
        "other_disaster", "Bencana lain (longsor, pohon tumbang, gempa, bangunan runtuh, angin kencang)",
        "disaster", "P2",
        (PATROL,), P2, 1500, 180 * MIN,
        keywords=(
            "longsor", "tanah longsor", "pohon tumbang", "tumbang", "roboh", "ambruk", "runtuh", "bangunan runtuh",
            "gempa", "gempa bumi", "puting beliung", "angin puting beliung", "angin kencang", "angin ribut",
            "badai", "tertimbun", "timbun", "tertimpa", "menimpa", "bencana", "bencana alam", "tsunami",
            "kebocoran gas", "gas bocor", "bau gas", "amblas", "amblesan", "jalan ambles", "ambles", "retak",
            "sinkhole", "likuifaksi", "gunung meletus", "tiang & roboh|tumbang|jatuh", "kabel listrik putus",
            "atap & rusak|terbang|roboh|ambruk",
        ),
        weak_keywords=("pohon", "tanah", "angin", "atap", "tiang", "dievakuasi", "bangunan"),
    ),
    # --- lost goods, assistance, non-emergency --------------------------------------------
    Category(
        "lost_goods", "Kehilangan barang / dokumen (SKTLK)", "lost_goods", "P4",
        (), P4, 200, 60 * MIN,
        keywords=(
            "kehilangan", "laporan kehilangan", "surat kehilangan", "surat keterangan kehilangan", "sktlk",
            "keterangan hilang", "hilang|tercecer|ketinggalan|tertinggal|terjatuh|jatuh & dompet|tas|hp|ktp|sim|stnk"
            "|bpkb|kk|ijazah|paspor|atm|kartu|surat|sertifikat|dokumen|buku|akta|kunci|laptop|koper|barang|perhiasan"
            "|cincin|kalung|jam|kamera|ponsel|handphone|map|berkas|npwp|bukti|kitas|rapor",
            "buku nikah hilang|tercecer|ketinggalan",
            "dompet|tas|hp|ktp|sim|stnk|bpkb|kk|ijazah|paspor|atm|kartu|surat|sertifikat|dokumen|akta|kunci|laptop"
            "|koper|barang|perhiasan|ponsel|handphone|map|berkas & hilang|tercecer|ketinggalan|tertinggal|terjatuh"
            "|jatuh|lupa|tertukar",
            "tercecer", "ketinggalan", "tertinggal", "terjatuh", "tertukar", "lupa taruh|menaruh|naruh", "urus ulang",
            "ganti baru", "buat ulang", "mengurus ulang", "bikin ulang",
        ),
        weak_keywords=("hilang", "dompet", "ktp", "stnk", "sim", "bpkb", "ijazah", "paspor", "dokumen", "sertifikat",
                       "kartu", "buku nikah", "akta", "surat", "keterangan"),
    ),
    Category(
        "assistance_request", "Permintaan pendampingan / pengawalan / pengamanan", "assistance", "P2",
        (PATROL,), ASSISTANCE, 300, 120 * MIN,
        keywords=(
            "pendampingan", "didampingi", "mendampingi", "dampingi", "minta pendampingan", "mohon didampingi",
            "pengawalan", "dikawal", "mengawal", "kawal", "minta dikawal", "pengamanan", "minta pengamanan",
            "mohon pengamanan", "diamankan & acara", "eksekusi", "juru sita", "penarikan kendaraan",
            "ambil|mengambil|menarik|tarik kembali", "polisi & ikut|menemani|temani",
            "petugas & ikut|menemani|temani", "ditemani polisi|petugas", "bantuan & mengambil|ambil|menarik|membawa",
            "minta|mohon bantuan petugas|polisi", "bawa uang tunai", "mengantar uang",
        ),
        weak_keywords=("bantuan", "mohon", "minta", "ambil", "takut", "rental", "debt collector", "leasing"),
    ),
    Category(
        "non_emergency", "Informasi / pengaduan umum / bukan darurat", "non_emergency", "P4",
        (), P4, 100, 30 * MIN,
        keywords=(
            "cuma|hanya|telepon|telpon|nelpon iseng", "iseng saja", "tes", "test", "ngetes", "coba coba",
            "coba nomor", "salah sambung", "bercanda",
            "mau tanya|bertanya|nanya", "tanya syarat|prosedur|cara|jam", "syarat", "persyaratan", "skck",
            "perpanjang|perpanjangan sim|stnk", "bikin|buat|membuat|urus sim|skck", "jam buka|pelayanan|operasional",
            "perkembangan laporan|kasus|perkara", "sp2hp", "terima kasih",
            "apresiasi", "saran", "kritik", "keluhan pelayanan", "sudah sampai mana", "nomor telepon|telp",
            "alamat polsek|polres", "lampu jalan|pju mati|padam|rusak", "diteruskan", "pihak terkait", "sttlp",
            "izin keramaian",
        ),
        weak_keywords=("iseng", "info", "informasi", "pelayanan", "sim", "tanya", "nanya", "bagaimana", "gimana",
                       "berapa", "apa aja", "kapan", "ya pak", "halo"),
    ),
    # The panic button of a unit: a P1 incident at the unit's position, two cars as backup at once.
    # Never matched as a duplicate of another incident (intake), its own radius is small.
    Category(
        "officer_emergency", "Anggota dalam bahaya (tombol panik)", "persons", "P1",
        (UnitNeed("car", 2),), P1, 100, 5 * MIN,
        keywords=("tombol panik", "anggota dalam bahaya", "petugas dalam bahaya", "anggota diserang", "petugas diserang",
                  "polisi diserang", "minta backup", "butuh backup", "anggota terluka", "petugas terluka"),
    ),
    Category(UNCLASSIFIED, "Belum diklasifikasi", "non_emergency", "P3", (PATROL,), P3, 500, 30 * MIN),
)

BY_CODE: dict[str, Category] = {c.code: c for c in CATEGORIES}

# Pairs of categories, in different groups, that reports of one event often split between.
RELATED: frozenset[frozenset[str]] = frozenset(frozenset(p) for p in (
    ("street_robbery", "assault"),
    ("street_robbery", "shooting"),
    ("brawl", "assault"),
    ("brawl", "public_order"),
    ("brawl", "demonstration"),
    ("brawl", "vandalism"),
    ("demonstration", "traffic_jam"),
    ("traffic_accident", "traffic_jam"),
    ("traffic_accident", "assault"),
    ("fire", "other_disaster"),
    ("fire", "traffic_accident"),
    ("flood", "traffic_jam"),
    ("other_disaster", "traffic_jam"),
    ("other_disaster", "traffic_accident"),
    ("missing_person", "kidnapping"),
    ("domestic_violence", "public_order"),
    ("suspicious_activity", "burglary"),
    ("suspicious_activity", "vehicle_theft"),
    ("suspicious_activity", "theft"),
    ("lost_goods", "theft"),
    ("lost_goods", "pickpocketing"),
    ("public_order", "drugs"),
    ("public_order", "vandalism"),
    ("public_order", "assault"),
))


def category(code: str | None) -> Category:
    """The category for a code; the unclassified one for None. KeyError for an unknown code."""
    return BY_CODE[code or UNCLASSIFIED]


def groups_compatible(a: str | None, b: str | None) -> bool:
    """Whether reports of categories `a` and `b` may describe the same event.

    True when equal, in the same group, when either is unclassified (None counts as
    unclassified), or for a known pair across groups (`RELATED`). A group name is accepted in
    place of a code (then only the group rule applies; pass codes to get the pairs too).
    KeyError for a name that is neither a code nor a group.
    """
    (code_a, group_a), (code_b, group_b) = _code_and_group(a), _code_and_group(b)
    if UNCLASSIFIED in (code_a, code_b) or group_a == group_b or (code_a is not None and code_a == code_b):
        return True
    return code_a is not None and code_b is not None and frozenset((code_a, code_b)) in RELATED


def _code_and_group(name: str | None) -> tuple[str | None, str]:
    if not name or name in BY_CODE:
        c = category(name)
        return c.code, c.group
    if name in GROUPS:
        return None, name
    raise KeyError(name)

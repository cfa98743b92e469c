"""Reproducible labelled PII/secret workload for the sovereignty guard (detection + redaction).

How it is generated (fixed seed, pure Python `random`, no third-party code at generation time): each
snippet is a template (support ticket, e-mail, chat log, invoice, log line, JSON blob, code snippet,
tool-call arguments) with placeholders. `<<EMAIL>>`, `<<PHONE:de>>`, `<<SECRET:github>>`... are PII
slots: the generator draws a value for the category (the part after the colon picks a format or a
country) and records a `Span` with its exact offsets. Lower-case slots such as `<<order_number>>`,
`<<uuid>>` or `<<bad_iban>>` are decoys: look-alikes that a detector must leave alone (order and
invoice numbers, timestamps, versions, prices, SKUs, tracking numbers, UUIDs, commit hashes, colours,
ISBNs, 16-digit numbers that fail Luhn, IBAN-shaped strings that fail mod-97, 9-digit numbers that
cannot be SSNs...). They are recorded in `Snippet.decoys`, and every decoy is re-drawn until it fails
every structural check that a detector would use (Luhn, mod-97, SSN rules, the national-ID check
digits below, `ipaddress`).

Structured values are generated, not listed, and valid by the same checks a real detector runs:
payment cards (Visa, Mastercard, Amex, Discover, JCB, Diners, UnionPay) carry a Luhn check digit and
are printed plain, with spaces or with dashes; IBANs (14 countries) carry mod-97 check digits, plus
the national check digits where python-stdnum verifies or the country defines them (ES, FR, PT);
US SSNs follow the SSA rules (no 000/666/9xx area, no 00 group, no 0000 serial); EU national ids
are German Steuer-IdNr, Dutch BSN, Spanish DNI, French NIR, Polish PESEL, Finnish HETU and Swedish
personnummer, each with its check digit (all accepted by python-stdnum); phone numbers come from
allocated mobile/landline ranges of `PHONE_REGIONS` in national and international formats (valid
for `phonenumbers`); IP addresses are IPv4 (public and private) and IPv6 (compressed, exploded,
link-local). Secrets use real token shapes (sk-, sk-proj-, sk-ant-, ghp_, github_pat_, AKIA, AWS
secret keys, xoxb-/xoxp-, sk_live_, AIza, SG., JWTs) and high-entropy strings in `token=` /
`password` contexts. Names, places and organisations come from multi-cultural lists.

`generate_eval_set` makes a mixed set: 3 snippets in 10 are hard negatives (decoys only, or decoys
plus a real name or organisation in a greeting or sign-off); the positive ones cycle through `CATEGORIES` for their
main category, so every category appears at least n * 0.7 / 11 times. `generate_canaries` plants
values that are unique across the whole corpus (no value occurs twice, or inside another value, or
anywhere else in any text), so a test can grep remote payloads and traces for any of them. Same seed,
same snippets, on every machine.
"""

from __future__ import annotations

import base64
import ipaddress
import json
import random
import re
import string
import unicodedata
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import date

EMAIL = "EMAIL"
PHONE = "PHONE"
CREDIT_CARD = "CREDIT_CARD"
IBAN = "IBAN"
US_SSN = "US_SSN"
EU_NATIONAL_ID = "EU_NATIONAL_ID"
IP_ADDRESS = "IP_ADDRESS"
SECRET = "SECRET"
PERSON = "PERSON"
LOCATION = "LOCATION"
ORGANIZATION = "ORGANIZATION"
CATEGORIES = (EMAIL, PHONE, CREDIT_CARD, IBAN, US_SSN, EU_NATIONAL_ID, IP_ADDRESS, SECRET, PERSON, LOCATION,
              ORGANIZATION)
KINDS = ("positive", "hard_negative")

# Decoy kinds: look-alikes recorded in `Snippet.decoys` (never PII).
DECOY_KINDS = ("order_number", "invoice_number", "tracking_number", "timestamp", "date", "time", "version",
               "semver", "price", "sku", "uuid", "non_luhn_number", "bad_iban", "non_ssn_number", "non_id_number",
               "git_hash", "checksum", "hex_colour", "isbn", "last4")

PHONE_REGIONS = ("US", "GB", "DE", "FR", "NL", "ES", "IT", "IN", "JP", "BR", "AU", "NG", "CN")
IBAN_COUNTRIES = ("DE", "GB", "IE", "FR", "NL", "IT", "ES", "AT", "CH", "PL", "PT", "SE", "FI", "DK")
EU_ID_SCHEMES = ("de", "nl", "es", "fr", "pl", "fi", "se")  # Steuer-IdNr, BSN, DNI, NIR, PESEL, HETU, personnummer
SECRET_KINDS = ("openai", "openai_project", "anthropic", "github", "github_pat", "aws", "aws_secret", "slack",
                "stripe", "google", "sendgrid", "jwt", "generic", "password")


@dataclass(frozen=True)
class Span:
    """A labelled value: `text[start:end] == value` in its snippet."""

    category: str
    start: int
    end: int
    value: str


@dataclass(frozen=True)
class Snippet:
    """One text with its gold PII spans; `decoys` are the look-alikes it contains (not PII)."""

    id: str
    text: str
    spans: tuple[Span, ...]
    kind: str  # "positive" or "hard_negative"
    decoys: tuple[Span, ...] = ()


# --------------------------------------------------------------------------------------------- names

NAMES = {  # culture: (first names, last names)
    "english": (("Oliver", "Emily", "James", "Charlotte", "Harry", "Sophie", "Grace", "Mark", "Rose"),
                ("Smith", "Taylor", "Hughes", "O'Brien", "Walsh", "Bennett", "Clarke")),
    "german": (("Lukas", "Anna", "Jonas", "Lena", "Matthias", "Katrin", "Jürgen"),
               ("Müller", "Schneider", "Fischer", "Weber", "Becker", "Hoffmann", "Schäfer")),
    "french": (("Camille", "Léa", "Hugo", "Mathieu", "Chloé", "Étienne", "Margaux"),
               ("Dubois", "Lefèvre", "Moreau", "Girard", "Rousseau", "Fontaine", "Mercier")),
    "spanish": (("Lucía", "Alejandro", "Carmen", "Javier", "Sofía", "Diego", "Valentina"),
                ("García", "Fernández", "López", "Martínez", "Ruiz", "Navarro", "Castillo")),
    "italian": (("Giulia", "Marco", "Francesca", "Alessandro", "Chiara", "Lorenzo"),
                ("Rossi", "Esposito", "Bianchi", "Romano", "Colombo", "Ricci")),
    "dutch": (("Daan", "Sanne", "Bram", "Fleur", "Thijs", "Lotte"),
              ("de Vries", "van den Berg", "Jansen", "Bakker", "Visser", "van Dijk")),
    "polish": (("Katarzyna", "Piotr", "Agnieszka", "Tomasz", "Magdalena", "Paweł"),
               ("Kowalski", "Nowak", "Wiśniewski", "Wójcik", "Kamiński", "Zieliński")),
    "nordic": (("Astrid", "Lars", "Ingrid", "Mikko", "Sanna", "Erik"),
               ("Andersson", "Johansson", "Nieminen", "Lindqvist", "Virtanen", "Halvorsen")),
    "indian": (("Priya", "Arjun", "Ananya", "Rohan", "Kavya", "Vikram", "Lakshmi"),
               ("Sharma", "Natarajan", "Iyer", "Patel", "Reddy", "Chatterjee", "Menon")),
    "chinese": (("Wei", "Xiaoling", "Jun", "Mei", "Hao", "Yuxuan"),
                ("Wang", "Zhang", "Chen", "Liu", "Huang", "Zhou")),
    "japanese": (("Haruto", "Yui", "Sota", "Aoi", "Kenji", "Yuki"),
                 ("Tanaka", "Suzuki", "Takahashi", "Watanabe", "Yamamoto", "Nakamura")),
    "korean": (("Min-jun", "Seo-yeon", "Ji-ho", "Ha-eun", "Do-yoon"),
               ("Kim", "Park", "Choi", "Jung", "Kang")),
    "arabic": (("Omar", "Fatima", "Youssef", "Layla", "Karim", "Amira"),
               ("Haddad", "Al-Sayed", "Khalil", "Mansour", "Nasser", "Farouk")),
    "west_african": (("Chinedu", "Ngozi", "Oluwaseun", "Aisha", "Kwame", "Adaeze"),
                     ("Okafor", "Adeyemi", "Mensah", "Eze", "Balogun", "Owusu")),
    "turkish": (("Emre", "Elif", "Mehmet", "Zeynep", "Burak"),
                ("Yılmaz", "Kaya", "Demir", "Şahin", "Çelik")),
    "vietnamese": (("Minh", "Linh", "Huong", "Tuan", "Thao"),
                   ("Nguyen", "Tran", "Pham", "Hoang", "Vu")),
    "brazilian": (("João", "Ana", "Rafael", "Beatriz", "Thiago", "Mariana"),
                  ("Silva", "Santos", "Oliveira", "Souza", "Pereira", "Costa")),
    "slavic": (("Dmitri", "Olena", "Sergei", "Natalia", "Andriy", "Irina"),
               ("Ivanov", "Kovalenko", "Petrova", "Shevchenko", "Smirnov", "Bondarenko")),
    "persian": (("Dariush", "Shirin", "Reza", "Parisa", "Navid"),
                ("Hosseini", "Karimi", "Rahimi", "Moradi", "Tehrani")),
    "greek": (("Nikos", "Eleni", "Giorgos", "Maria", "Dimitra"),
              ("Papadopoulos", "Georgiou", "Nikolaidis", "Pappas", "Vlachos")),
}

CITIES = (
    ("Lyon", "France"), ("Marseille", "France"), ("Porto", "Portugal"), ("Kraków", "Poland"), ("Wrocław", "Poland"),
    ("Osaka", "Japan"), ("Kyoto", "Japan"), ("Lagos", "Nigeria"), ("Abuja", "Nigeria"), ("Pune", "India"),
    ("Bengaluru", "India"), ("Curitiba", "Brazil"), ("Recife", "Brazil"), ("Rotterdam", "Netherlands"),
    ("Utrecht", "Netherlands"), ("Gothenburg", "Sweden"), ("Tampere", "Finland"), ("Valencia", "Spain"),
    ("Bilbao", "Spain"), ("Bologna", "Italy"), ("Torino", "Italy"), ("Leipzig", "Germany"), ("Hamburg", "Germany"),
    ("Manchester", "United Kingdom"), ("Edinburgh", "United Kingdom"), ("Nairobi", "Kenya"), ("Accra", "Ghana"),
    ("Izmir", "Türkiye"), ("Da Nang", "Vietnam"), ("Busan", "South Korea"), ("Shenzhen", "China"),
    ("Monterrey", "Mexico"), ("Medellín", "Colombia"), ("Casablanca", "Morocco"), ("Isfahan", "Iran"),
    ("Thessaloniki", "Greece"), ("Kyiv", "Ukraine"), ("Melbourne", "Australia"), ("Vancouver", "Canada"),
    ("Cape Town", "South Africa"), ("Dubai", "United Arab Emirates"), ("Singapore", "Singapore"),
    ("Chicago", "USA"), ("Seattle", "USA"), ("Ghent", "Belgium"), ("Zürich", "Switzerland"), ("Graz", "Austria"),
    ("Cork", "Ireland"), ("Montevideo", "Uruguay"), ("Kuala Lumpur", "Malaysia"),
)

# country: (cities, streets, format); the format gets n (house number), s (street), c (city), p (postcode).
ADDRESSES: dict[str, tuple[tuple[str, ...], tuple[str, ...], str]] = {
    "fr": (("Lyon", "Marseille", "Toulouse", "Nantes", "Bordeaux", "Lille"),
           ("rue Mercière", "rue de la République", "avenue Jean Jaurès", "boulevard Voltaire", "rue des Lilas"),
           "{n} {s}, {p} {c}"),
    "de": (("Berlin", "Leipzig", "Hamburg", "München", "Köln", "Dresden"),
           ("Goethestraße", "Lindenallee", "Schillerstraße", "Karl-Marx-Allee", "Bahnhofstraße"),
           "{s} {n}, {p} {c}"),
    "uk": (("Manchester", "Leeds", "Bristol", "Glasgow", "Edinburgh", "Cardiff"),
           ("Oxford Road", "Church Street", "Victoria Avenue", "Mill Lane", "Station Road"),
           "{n} {s}, {c} {p}"),
    "us": (("Austin, TX", "Seattle, WA", "Chicago, IL", "Denver, CO", "Atlanta, GA", "Boston, MA"),
           ("Maple Avenue", "Oak Street", "Elm Drive", "Sunset Boulevard", "Pine Street"),
           "{n} {s}, {c} {p}"),
    "es": (("Madrid", "Valencia", "Sevilla", "Bilbao", "Zaragoza"),
           ("Calle de Alcalá", "Calle Mayor", "Avenida de la Constitución", "Gran Vía"),
           "{s} {n}, {p} {c}"),
    "it": (("Bologna", "Milano", "Torino", "Napoli", "Firenze"),
           ("Via Roma", "Via Garibaldi", "Corso Vittorio Emanuele II", "Via dei Mille"),
           "{s} {n}, {p} {c}"),
    "nl": (("Rotterdam", "Utrecht", "Amsterdam", "Eindhoven", "Groningen"),
           ("Kerkstraat", "Dorpsstraat", "Prinsengracht", "Stationsweg"),
           "{s} {n}, {p} {c}"),
    "jp": (("Osaka", "Kyoto", "Fukuoka", "Sapporo", "Nagoya"),
           ("Umeda", "Shinsaibashi", "Tenjin", "Sakae", "Gion"),
           "{n} {s}, {c} {p}"),
    "in": (("Bengaluru", "Pune", "Chennai", "Hyderabad", "Kochi"),
           ("MG Road", "Residency Road", "Anna Salai", "FC Road"),
           "{n}, {s}, {c} {p}"),
    "br": (("Curitiba", "Recife", "Porto Alegre", "Belo Horizonte"),
           ("Rua das Flores", "Avenida Paulista", "Rua XV de Novembro"),
           "{s}, {n} - {c}, CEP {p}"),
    "ng": (("Lagos", "Abuja", "Ibadan"),
           ("Adeola Odeku Street", "Awolowo Road", "Herbert Macaulay Way"),
           "{n} {s}, {c} {p}"),
}

ORG_PREFIXES = ("Brightwater", "Northwind", "Kestrel", "Bluepeak", "Silverline", "Ironbridge", "Lakeside", "Redwood",
                "Greenfield", "Aurora", "Meridian", "Cobalt", "Harbourview", "Summitline", "Orchid", "Sakura",
                "Baobab", "Andes", "Nordlicht", "Alpenrose", "Tulip", "Cedarwood", "Falconer", "Nimbus", "Pinecrest",
                "Solstice", "Zephyr", "Monsoon", "Kilimanjaro", "Fjordline")
ORG_SECTORS = ("Logistics", "Analytics", "Health", "Foods", "Robotics", "Capital", "Energy", "Labs", "Pharma",
               "Software", "Textiles", "Insurance", "Consulting", "Dental Clinic", "Architects", "Freight", "Biotech",
               "Media", "Solar", "Systems")
ORG_FORMS = ("GmbH", "Ltd", "Inc.", "S.A.", "B.V.", "SAS", "S.p.A.", "AB", "Oy", "Sp. z o.o.", "K.K.", "Pvt Ltd",
             "LLC", "plc", "AG", "S.L.", "Ltda.")
REAL_ORGS = ("Siemens", "Infosys", "Banco Santander", "Toyota", "Unilever", "Airbus", "Deutsche Bahn",
             "Médecins Sans Frontières", "Tata Consultancy Services", "Samsung Electronics", "Zalando", "Mercado Libre",
             "Safaricom", "Dangote Group", "University of Lagos", "ETH Zürich", "Spotify", "Apple", "Nokia", "Philips",
             "Heineken", "Petrobras", "Alibaba", "Naver", "Emirates", "Allianz", "BBVA", "Carrefour", "Wipro",
             "Flutterwave", "Grab", "Rakuten")
FREE_MAIL = ("gmail.com", "outlook.com", "hotmail.co.uk", "yahoo.fr", "web.de", "gmx.de", "proton.me", "icloud.com",
             "libero.it", "orange.fr", "naver.com", "mail.ru", "rediffmail.com", "t-online.de", "seznam.cz",
             "uol.com.br")

# --------------------------------------------------------------------------------------------- templates
# Upper-case slots are PII (`<<CATEGORY>>` or `<<CATEGORY:variant>>`), lower-case slots are decoys.
# Per category: prose templates (may get a greeting / sign-off around them) and raw ones (logs, JSON, code).

TEMPLATES: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    EMAIL: ((
        "Please update my contact email to <<EMAIL>>, the old one is no longer monitored.",
        "I never received the password reset mail at <<EMAIL>>. Order <<order_number>> is stuck until I can log in.",
        "Can you cc <<EMAIL>> on all future tickets about invoice <<invoice_number>>?",
        "Our accounts payable address changed to <<EMAIL>> as of <<date>>.",
        "Forwarding this to <<EMAIL>>, she handles the renewals for <<ORGANIZATION>>.",
    ), (
        ("From: <<PERSON>> <<<EMAIL>>>\nTo: <<EMAIL>>\nSubject: Re: invoice <<invoice_number>>\n\n"
         "See attached, due <<date>>."),
        "<<timestamp>> WARN auth: failed login for user=<<EMAIL>> attempts=3",
        '{"customer": {"name": "<<PERSON>>", "email": "<<EMAIL>>"}, "order": "<<order_number>>", "total": "<<price>>"}',
        'git config user.email "<<EMAIL>>"',
        "notify(recipients=[\"<<EMAIL>>\"], template=\"order_shipped\", order_id=\"<<order_number>>\")",
    )),
    PHONE: ((
        "My number is <<PHONE>>, please call me after 5pm.",
        "The courier had the wrong number; the right one is <<PHONE>>.",
        "Text me at <<PHONE>> when the technician is on the way.",
        "Please call our office in <<LOCATION:city>> on <<PHONE>>, ask for reception.",
        "Ich bin unter <<PHONE:de>> erreichbar, am besten vormittags.",
        "Vous pouvez me joindre au <<PHONE:fr>> pour la livraison.",
    ), (
        "<<PERSON>>;<<PHONE>>;<<EMAIL>>;active",
        '{"contact_phone": "<<PHONE>>", "preferred_channel": "sms", "updated": "<<timestamp>>"}',
        "[chat] agent: Can I get a callback number?\n[chat] customer: sure, <<PHONE>>",
        "Tel.: <<PHONE>>\nMobile: <<PHONE>>",
        "<<timestamp>> INFO sms.send to=<<PHONE>> template=otp status=queued",
    )),
    CREDIT_CARD: ((
        "I paid with my card <<CREDIT_CARD>> but the charge appears twice.",
        "Please charge the remaining <<price>> to <<CREDIT_CARD>>, expiry 09/27.",
        "Card number <<CREDIT_CARD>> was declined at checkout again, order <<order_number>>.",
        "Can you remove the old card <<CREDIT_CARD>> from my account and keep the one ending in <<last4>>?",
    ), (
        '{"payment_method": {"type": "card", "number": "<<CREDIT_CARD>>", "exp": "11/26"}, "amount": "<<price>>"}',
        "<<timestamp>> ERROR payment: gateway rejected pan=<<CREDIT_CARD>> amount=<<price>>",
        'card = "<<CREDIT_CARD>>"  # TODO remove before commit',
        "Invoice <<invoice_number>>\nPaid by card: <<CREDIT_CARD>>\nTotal: <<price>>",
    )),
    IBAN: ((
        "Please refund the <<price>> to my account <<IBAN>>.",
        "Our bank details changed: the new IBAN is <<IBAN>> (<<ORGANIZATION>>).",
        "Kindly wire the deposit to <<IBAN>>, reference <<invoice_number>>.",
        "Bitte überweisen Sie den Betrag auf <<IBAN:de>>.",
    ), (
        "Invoice <<invoice_number>>\nBeneficiary: <<ORGANIZATION>>\nIBAN: <<IBAN>>\nAmount due: <<price>>",
        '{"payout": {"iban": "<<IBAN>>", "holder": "<<PERSON>>"}, "currency": "EUR"}',
        "SEPA mandate for <<PERSON>>, debtor IBAN <<IBAN>>, signed <<date>>",
        "<<timestamp>> INFO payouts: transfer <<order_number>> to <<IBAN>> settled",
    )),
    US_SSN: ((
        "For the tax form I need to confirm my SSN: <<US_SSN>>.",
        "The background check vendor asked for social security number <<US_SSN>> again.",
        "Employee <<PERSON>> (SSN <<US_SSN>>) starts on <<date>>.",
        "My social is <<US_SSN>>, can you check why the W-2 was rejected?",
    ), (
        '{"applicant": "<<PERSON>>", "ssn": "<<US_SSN>>", "employer": "<<ORGANIZATION>>"}',
        "W-2 for <<PERSON>>, SSN: <<US_SSN>>, employer <<ORGANIZATION>>",
        "<<timestamp>> DEBUG kyc.verify ssn=<<US_SSN>> result=match",
        "INSERT INTO employees (name, ssn) VALUES ('<<PERSON>>', '<<US_SSN>>');",
    )),
    EU_NATIONAL_ID: ((
        "Meine Steuer-ID ist <<EU_NATIONAL_ID:de>>, bitte im Vertrag ergänzen.",
        "My BSN is <<EU_NATIONAL_ID:nl>>, the municipality needs it for the permit.",
        "Adjunto mi DNI <<EU_NATIONAL_ID:es>> para la factura.",
        "Mon numéro de sécurité sociale est <<EU_NATIONAL_ID:fr>>.",
        "Mój PESEL to <<EU_NATIONAL_ID:pl>>, proszę o korektę.",
        "Henkilötunnukseni on <<EU_NATIONAL_ID:fi>>.",
        "Mitt personnummer är <<EU_NATIONAL_ID:se>>.",
        "Please verify the national ID number <<EU_NATIONAL_ID>> for the new tenant.",
    ), (
        '{"tenant": "<<PERSON>>", "national_id": "<<EU_NATIONAL_ID>>", "since": "<<date>>"}',
        "Steuerliche Identifikationsnummer: <<EU_NATIONAL_ID:de>>\nName: <<PERSON>>",
        "<<timestamp>> INFO onboarding: id_check passed id=<<EU_NATIONAL_ID>>",
        "patient_id,bsn\n<<order_number>>,<<EU_NATIONAL_ID:nl>>",
        "PESEL: <<EU_NATIONAL_ID:pl>>\nImię i nazwisko: <<PERSON>>",
        '{"nir": "<<EU_NATIONAL_ID:fr>>", "regime": "general", "updated": "<<date>>"}',
        "hetu=<<EU_NATIONAL_ID:fi>> personnummer=<<EU_NATIONAL_ID:se>> dni=<<EU_NATIONAL_ID:es>>",
    )),
    IP_ADDRESS: ((
        "Our office IP <<IP_ADDRESS>> is being blocked by your firewall.",
        "Can you whitelist <<IP_ADDRESS:v4>> and <<IP_ADDRESS:v4>> for the API?",
        "I keep getting logged out; my IP alternates between <<IP_ADDRESS:v4>> and <<IP_ADDRESS:v6>>.",
        "Someone logged into my account from <<IP_ADDRESS>>, that was not me.",
    ), (
        '<<IP_ADDRESS:v4>> - - [<<timestamp>>] "GET /login HTTP/1.1" 401 512',
        "ssh deploy@<<IP_ADDRESS:v4>> -p 2222",
        'ALLOWED_HOSTS = ["<<IP_ADDRESS>>", "localhost"]',
        '{"client_ip": "<<IP_ADDRESS>>", "user_agent": "curl/8.5.0", "status": 403}',
        "<<timestamp>> WARN ratelimit: blocked src=<<IP_ADDRESS:v6>> after 120 req/min",
    )),
    SECRET: ((
        "I accidentally pasted my key in the last message: <<SECRET:openai>>, can you revoke it?",
        "Here's the token for the integration: <<SECRET>>",
        "Our CI broke after rotating the repo token, the new one is <<SECRET:github>>.",
        "The chat bot stopped posting, we use <<SECRET:slack>> as the bot token.",
    ), (
        "export OPENAI_API_KEY=<<SECRET:openai_project>>",
        "AWS_ACCESS_KEY_ID=<<SECRET:aws>>\nAWS_SECRET_ACCESS_KEY=<<SECRET:aws_secret>>",
        'curl -H "Authorization: Bearer <<SECRET:jwt>>" https://api.internal/v1/me',
        "<<timestamp>> DEBUG http: POST /v1/charges token=<<SECRET:generic>>",
        '{"api_key": "<<SECRET>>", "timeout": 30, "retries": 3}',
        'client = Client(api_key="<<SECRET:anthropic>>")',
        "DATABASE_URL=postgres://app:<<SECRET:password>>@<<IP_ADDRESS:v4>>:5432/orders",
        'stripe.api_key = "<<SECRET:stripe>>"',
        "GOOGLE_MAPS_KEY: <<SECRET:google>>\nSENDGRID_KEY: <<SECRET:sendgrid>>",
        "git remote set-url origin https://x-access-token:<<SECRET:github_pat>>@github.com/acme/app.git",
    )),
    PERSON: ((
        "Hi, this is <<PERSON>> from accounting, I need access to the shared drive.",
        "Please assign this ticket to <<PERSON>>; <<PERSON:first>> knows the setup.",
        "<<PERSON>> and <<PERSON>> will join the onboarding call on <<date>>.",
        "My manager <<PERSON>> approved the purchase, order <<order_number>>.",
        "The parcel was signed for by <<PERSON>>, but nobody here has that name.",
    ), (
        "[<<time>>] <<PERSON:first>>: anyone seen the deploy fail?\n[<<time>>] <<PERSON:first>>: yes, looking now",
        "Reviewed-by: <<PERSON>> <<<EMAIL>>>",
        '{"assignee": "<<PERSON>>", "priority": "high", "ticket": "<<order_number>>"}',
        "# Author: <<PERSON>>\n# Last updated <<date>>",
    )),
    LOCATION: ((
        "I'm moving to <<LOCATION>> next month, please update my shipping address.",
        "Please ship the replacement to <<LOCATION:address>>.",
        "Our warehouse in <<LOCATION:city>> reports the parcel <<tracking_number>> as lost.",
        "The outage seems limited to customers in <<LOCATION>>.",
        "We are opening a second office in <<LOCATION:city>> on <<date>>.",
    ), (
        '{"shipping_address": "<<LOCATION:address>>", "name": "<<PERSON>>"}',
        "<<timestamp>> INFO geo: new sign-in from <<LOCATION:city>>",
        "Ship to:\n<<PERSON>>\n<<LOCATION:address>>",
        "weather_lookup(city=\"<<LOCATION:city>>\", units=\"metric\")",
    )),
    ORGANIZATION: ((
        "I work at <<ORGANIZATION>> and we want a volume licence.",
        "We're switching from <<ORGANIZATION>> to your platform next quarter.",
        "The invoice should be addressed to <<ORGANIZATION>>, not to me personally.",
        "<<ORGANIZATION>> acquired <<ORGANIZATION>> last year; please merge our accounts.",
    ), (
        '{"company": "<<ORGANIZATION>>", "seats": 40, "plan": "enterprise"}',
        "Bill to: <<ORGANIZATION>>\nInvoice: <<invoice_number>>\nDue: <<date>>",
        "<<timestamp>> INFO crm: lead created org=\"<<ORGANIZATION>>\" owner=<<PERSON:first>>",
    )),
}

MIXED = (
    ("Hi, I'm <<PERSON>> from <<ORGANIZATION>> in <<LOCATION:city>>. Please send the contract to <<EMAIL>> "
     "or call <<PHONE>>."),
    "Name: <<PERSON>>\nEmail: <<EMAIL>>\nPhone: <<PHONE>>\nAddress: <<LOCATION:address>>\nCard: <<CREDIT_CARD>>",
    ('{"user": {"name": "<<PERSON>>", "email": "<<EMAIL>>", "ip": "<<IP_ADDRESS>>"}, "event": "signup", '
     '"ts": "<<timestamp>>"}'),
    "<<PERSON>> (<<EMAIL>>) reported that payouts to <<IBAN>> have failed since <<date>>.",
    "New hire: <<PERSON>>, SSN <<US_SSN>>, phone <<PHONE:us>>, office <<LOCATION:city>>.",
    ("[support chat]\ncustomer: my card <<CREDIT_CARD>> was charged but order <<order_number>> is missing\n"
     "agent: sorry about that! can you confirm the email on the account?\ncustomer: <<EMAIL>>"),
    ("Contractor <<PERSON>>, Steuer-ID <<EU_NATIONAL_ID:de>>, IBAN <<IBAN:de>>, invoice <<invoice_number>> over "
     "<<price>>."),
    'send_email(to="<<EMAIL>>", subject="Your refund", body="Hi <<PERSON:first>>, <<price>> goes to <<IBAN>>.")',
    "<<timestamp>> WARN auth: api key <<SECRET>> used from <<IP_ADDRESS>> (<<LOCATION:city>>)",
    "Patient <<PERSON>>, BSN <<EU_NATIONAL_ID:nl>>, tel. <<PHONE:nl>>, referred by <<ORGANIZATION>>.",
    "Please update the vendor record for <<ORGANIZATION>>: contact <<PERSON>>, <<EMAIL>>, IBAN <<IBAN>>.",
)

HARD_NEGATIVES: tuple[tuple[str, ...], tuple[str, ...]] = ((
    "Will do, I'll add the apple pie to Friday's catering order <<order_number>>.",
    "Can we split the bill? The total came to <<price>> including the tip.",
    "The grace period for invoice <<invoice_number>> ends on <<date>>.",
    "Mark the ticket as resolved, it was fixed in <<version>>.",
    "Sales rose by 4% after release <<semver>>, nice work everyone.",
    "May I move the delivery to <<date>>? The tracking number is <<tracking_number>>.",
    "Set the header colour to <<hex_colour>> and the hover state to <<hex_colour>>.",
    "The sterling silver ring (SKU <<sku>>) is back in stock at <<price>>.",
    "Hope this helps! The summer sale ends on <<date>> at <<time>>.",
    "The Georgia font renders badly since build <<version>>, see attached screenshot.",
    "Two Victoria sponges and a turkey sandwich, order <<order_number>>, paid <<price>>.",
    "Can someone chase the supplier about invoice <<invoice_number>>? It was due <<date>>.",
    "The bill of materials for <<sku>> is attached, <<price>> per unit.",
    "Shipment reference <<non_luhn_number>> left the warehouse on <<date>>.",
    "The form says IBAN <<bad_iban>> failed the checksum, I must have mistyped it, will send the right one.",
    "Order <<non_ssn_number>> was split into two parcels, the second ships <<date>>.",
    "Customer number <<non_id_number>> has three open tickets, all about the X200 router.",
    "The card ending in <<last4>> was declined, I'll use a different one.",
    "Please quote ISBN <<isbn>> when ordering, the price is <<price>>.",
    "Booking reference <<non_luhn_number>> is confirmed for <<date>>, check-in from <<time>>.",
    "Reference <<non_ssn_number>> appears on the parcel label, is that my order?",
    "I'm on Windows <<version>> and the installer <<semver>> crashes at 80%.",
    "Jack up the timeout to 30 seconds and redeploy <<semver>>.",
    "Dusty Rose and Sage Green are the new colourways, SKUs <<sku>> and <<sku>>.",
    "Your china set (SKU <<sku>>) ships with tracking <<tracking_number>>.",
    "Warranty claim <<order_number>> was approved; the new serial is <<non_luhn_number>>.",
    "Amber warnings showed up after upgrading to <<semver>>, nothing else changed.",
    "Meter number <<non_id_number>> shows an estimated reading for <<date>>.",
    "Payment file row 14 was rejected: account <<bad_iban>> has invalid check digits.",
    "Loyalty points on the card ending <<last4>> expire on <<date>>.",
    "Gift receipt for ISBN <<isbn>> and ISBN <<isbn>>, total <<price>>.",
    "Fixed by <<git_hash>>, cherry-picked onto release <<semver>>.",
    "Serial <<non_luhn_number>> has been out of warranty since <<date>>.",
    "Please quote reference <<non_ssn_number>> or ticket <<order_number>> when you call back.",
), (
    "<<timestamp>> INFO request_id=<<uuid>> GET /api/v2/orders/<<order_number>> 200 134ms",
    '{"order_id": "<<order_number>>", "created_at": "<<timestamp>>", "total": "<<price>>", "sku": "<<sku>>"}',
    "commit <<git_hash>>\nAuthor: release-bot\nDate: <<timestamp>>\n\n    Bump version to <<semver>>",
    "<<checksum>>  smallfleet-<<semver>>.tar.gz",
    ".btn-primary { background: <<hex_colour>>; border-color: <<hex_colour>>; }",
    "pip install smallfleet==<<semver>>",
    'const CACHE_NAMESPACE = "<<uuid>>"; // not a secret, just a namespace',
    '{"model": "gpt-small", "max_tokens": 512, "tokens_used": 187, "request_id": "<<uuid>>"}',
    "git checkout <<git_hash:short>> && make test",
    "Invoice <<invoice_number>> dated <<date>>: 3 x <<sku>> at <<price>> each.",
    "Ticket <<order_number>> opened at <<timestamp>> by the on-call bot.",
    '{"password_min_length": 12, "token_ttl_seconds": 3600, "api_version": "<<date>>"}',
    "Rotate any AKIA-prefixed access keys older than 90 days (policy of <<date>>); never commit SECRET_KEY values.",
    '{"card": {"brand": "visa", "last4": "<<last4>>", "exp_month": 9}, "status": "declined", "charge": "<<price>>"}',
    "<<timestamp>> WARN payments: reference <<non_luhn_number>> not found, retrying",
    "iban_example = \"<<bad_iban>>\"  # deliberately invalid checksum for the validation test",
    "trace_id=<<uuid>> span_id=<<git_hash:short>> duration_ms=87 status=OK",
    "Released <<semver>> on <<date>> (sha256 <<checksum>>)",
    "Kernel <<version>>, uptime 41 days, load average 0.42 0.38 0.35",
    "order_no,sku,qty,price\n<<order_number>>,<<sku>>,2,<<price>>\n<<order_number>>,<<sku>>,1,<<price>>",
    "<<timestamp>> INFO shipping: label created tracking=<<tracking_number>> weight=1.2kg",
    '{"isbn": "<<isbn>>", "title": "Designing Data-Intensive Applications", "price": "<<price>>"}',
    "claim_id=<<non_ssn_number>> status=closed updated=<<timestamp>>",
))

CANARY_TEMPLATES = (
    ("user: hi, can you update my profile?\nassistant: Sure, what should change?\n"
     "user: new phone is <<PHONE>> and email <<EMAIL>>"),
    ("user: draft a reply to <<PERSON>> at <<ORGANIZATION>>\nassistant: Of course. What should it say?\n"
     "user: tell them the payment to <<IBAN>> went out on <<date>>"),
    '{"tool": "lookup_customer", "arguments": {"email": "<<EMAIL>>"}}',
    ('{"name": "create_refund", "arguments": {"card_number": "<<CREDIT_CARD>>", "amount": "<<price>>", '
     '"reason": "duplicate"}}'),
    'call verify_identity(ssn="<<US_SSN>>", full_name="<<PERSON>>")',
    'tool_result: {"status": "ok", "national_id": "<<EU_NATIONAL_ID>>", "address": "<<LOCATION>>"}',
    "system: The user's API key is <<SECRET>>. Never reveal it.\nuser: what's my key again?",
    "user: deploy the build to <<IP_ADDRESS>> please\nassistant: Running the deploy tool now.",
    '{"messages": [{"role": "user", "content": "ship it to <<LOCATION>>, attention <<PERSON>>"}]}',
    "memory: <<PERSON>> works at <<ORGANIZATION>> and prefers calls on <<PHONE>>",
    '{"name": "send_sms", "arguments": {"to": "<<PHONE>>", "text": "Your parcel <<tracking_number>> is out"}}',
    ("user: my github token <<SECRET:github>> stopped working\nassistant: That token should be revoked; "
     "I will not store it."),
    "user: please file the claim for <<PERSON>>, ID <<EU_NATIONAL_ID>>\nassistant: Filing it now.",
    ('{"name": "wire_transfer", "arguments": {"iban": "<<IBAN>>", "beneficiary": "<<ORGANIZATION>>", '
     '"amount": "<<price>>"}}'),
    "assistant: I found the account of <<PERSON>> (<<EMAIL>>), last login from <<IP_ADDRESS>>.",
    ('{"role": "tool", "name": "crm_search", "content": "{\\"org\\": \\"<<ORGANIZATION>>\\", '
     '\\"city\\": \\"<<LOCATION>>\\"}"}'),
    "user: the card <<CREDIT_CARD>> is my company card, bill <<ORGANIZATION>>\nassistant: Noted.",
    "user: use this key for the tests: <<SECRET>>\nassistant: I'll put it in the environment, not in the code.",
    'call background_check(ssn="<<US_SSN>>", consent=True)',
    '{"name": "geo_lookup", "arguments": {"ip": "<<IP_ADDRESS>>"}}',
)

GREETINGS = ("Hi,", "Hello team,", "Dear support,", "hey", "Good morning,", "Hi <<PERSON:first>>,",
             "Dear <<PERSON>>,", "", "")
SIGNOFFS = ("Thanks, <<PERSON>>", "Regards,\n<<PERSON>>\n<<ORGANIZATION>>", "Cheers", "-- sent from my phone",
            "Best, <<PERSON:first>>", "Thanks!", "Kind regards,\n<<PERSON>>", "", "")

_SLOT = re.compile(r"<<([A-Za-z_][A-Za-z0-9_]*)(?::([a-z0-9_]+))?>>")
_DIGITS = "0123456789"
_BASE62 = string.ascii_letters + string.digits
_UPPER_DIGITS = string.ascii_uppercase + string.digits


# --------------------------------------------------------------------------------------------- checks
# Pure-Python versions of the structural checks a detector runs (they mirror python-stdnum's rules,
# separators included); used to compute check digits and to keep every decoy invalid.


def _isdigits(text: str) -> bool:
    return bool(text) and all(ch in _DIGITS for ch in text)


def luhn_checksum(digits: str) -> int:
    """Luhn checksum of a digit string; 0 means valid."""
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = int(ch)
        if i % 2:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return total % 10


def _luhn_digit(payload: str) -> str:
    return str((10 - luhn_checksum(payload + "0")) % 10)


def _mod97(text: str) -> int:
    return int("".join(str(int(ch, 36)) for ch in text)) % 97


def iban_ok(value: str) -> bool:
    """ISO 13616 check: country + 2 check digits + BBAN, rearranged mod 97 == 1."""
    compact = re.sub(r"[ .\-]", "", value).upper()
    return bool(re.fullmatch(r"[A-Z]{2}\d{2}[A-Z0-9]{8,30}", compact)) and _mod97(compact[4:] + compact[:4]) == 1


def _mod_11_10(digits: str) -> int:
    check = 5
    for ch in digits:
        check = (((check or 10) * 2) % 11 + int(ch)) % 10
    return check


def _valid_date(year: int, month: int, day: int) -> bool:
    try:
        date(year, month, day)
    except ValueError:
        return False
    return True


def _ssn_ok(value: str) -> bool:
    m = re.fullmatch(r"(\d{3})-?(\d{2})-?(\d{4})", value.strip())
    if not m:
        return False
    area, group, serial = m.groups()
    return not (area in ("000", "666") or area[0] == "9" or group == "00" or serial == "0000"
                or f"{area}-{group}-{serial}" in ("078-05-1120", "457-55-5462", "219-09-9999"))


def _bsn_ok(value: str) -> bool:
    c = re.sub(r"[ .\-]", "", value).strip().zfill(9)
    return (_isdigits(c) and int(c) > 0 and len(c) == 9
            and (sum((9 - i) * int(d) for i, d in enumerate(c[:-1])) - int(c[-1])) % 11 == 0)


def _idnr_ok(value: str) -> bool:
    c = re.sub(r"[ \-./,]", "", value).strip()
    if len(c) != 11 or not _isdigits(c) or c[0] == "0":
        return False
    repeats = [c[:10].count(d) for d in set(c[:10]) if c[:10].count(d) > 1]
    return len(repeats) == 1 and repeats[0] in (2, 3) and _mod_11_10(c) == 1


def _dni_ok(value: str) -> bool:
    c = re.sub(r"[ \-]", "", value).upper().strip()
    return len(c) == 9 and _isdigits(c[:-1]) and "TRWAGMYFPDXBNJZSQVHLCKE"[int(c[:-1]) % 23] == c[-1]


def _nir_ok(value: str) -> bool:
    c = re.sub(r"[ .]", "", value).strip().upper()
    if len(c) != 15 or not _isdigits(c[:5]) or not _isdigits(c[7:]):
        return False
    if not _isdigits(c[5:7]) and c[5:7] not in ("2A", "2B"):
        return False
    body = c[:5] + {"2A": "19", "2B": "18"}.get(c[5:7], c[5:7]) + c[7:13]
    return f"{97 - int(body) % 97:02d}" == c[13:]


def _pesel_ok(value: str) -> bool:
    c = re.sub(r"[ \-]", "", value).upper().strip()
    if len(c) != 11 or not _isdigits(c):
        return False
    weights = (1, 3, 7, 9, 1, 3, 7, 9, 1, 3)
    if str((10 - sum(w * int(d) for w, d in zip(weights, c[:10], strict=True))) % 10) != c[-1]:
        return False
    month = int(c[2:4])
    century = {0: 1900, 1: 2000, 2: 2100, 3: 2200, 4: 1800}.get(month // 20)
    return century is not None and _valid_date(century + int(c[:2]), month % 20, int(c[4:6]))


_HETU = re.compile(r"([0123]\d)([01]\d)(\d\d)([-+ABCDEFYXWVU])(\d\d\d)([0-9ABCDEFHJKLMNPRSTUVWXY])")


def _hetu_ok(value: str) -> bool:
    m = _HETU.fullmatch(value.upper().strip())
    if not m:
        return False
    day, month, year, sign, individual, control = m.groups()
    century = 1800 if sign == "+" else 1900 if sign in "-YXWVU" else 2000
    return (_valid_date(century + int(year), int(month), int(day)) and 2 <= int(individual) < 900
            and "0123456789ABCDEFHJKLMNPRSTUVWXY"[int(day + month + year + individual) % 31] == control)


def _personnummer_ok(value: str) -> bool:
    c = re.sub(r"[ :]", "", value)
    if len(c) in (10, 12) and c[-5] not in "-+":
        c = f"{c[:-4]}-{c[-4:]}"
    c = c[:-5].replace("-", "").replace("+", "") + c[-5:]
    if len(c) not in (11, 13) or c[-5] not in "-+":
        return False
    digits = c[:-5] + c[-4:]
    if not _isdigits(digits):
        return False
    if len(c) == 13:
        ok = _valid_date(int(c[:4]), int(c[4:6]), int(c[6:8]))
    else:  # the century depends on today's date; day and month validity do not (no 29 February here)
        ok = _valid_date(2000 if c[-5] == "-" else 1900, int(c[2:4]), int(c[4:6]))
    return ok and luhn_checksum(digits[-10:]) == 0


def _ip_ok(value: str) -> bool:
    try:
        ipaddress.ip_address(value.strip())
    except ValueError:
        return False
    return True


def looks_structured(value: str) -> bool:
    """True if any structural PII check accepts `value` (card/Luhn, IBAN, SSN, EU ids, IP)."""
    runs = [re.sub(r"[ \-]", "", value), *re.findall(r"\d+", value)]
    if any(_isdigits(run) and 12 <= len(run) <= 19 and luhn_checksum(run) == 0 for run in runs):
        return True
    checks = (iban_ok, _ssn_ok, _bsn_ok, _idnr_ok, _dni_ok, _nir_ok, _pesel_ok, _hetu_ok, _personnummer_ok, _ip_ok)
    return any(check(value) for check in checks)


# --------------------------------------------------------------------------------------------- value helpers


def _chars(rng: random.Random, alphabet: str, n: int) -> str:
    return "".join(rng.choice(alphabet) for _ in range(n))


def _digits(rng: random.Random, n: int) -> str:
    return _chars(rng, _DIGITS, n)


def _group(text: str, sizes: Iterable[int], sep: str) -> str:
    parts, i = [], 0
    for size in sizes:
        parts.append(text[i:i + size])
        i += size
    if i < len(text):
        parts.append(text[i:])
    return sep.join(p for p in parts if p)


def _birth(rng: random.Random, first: int = 1950, last: int = 2006) -> tuple[int, int, int]:
    return rng.randint(first, last), rng.randint(1, 12), rng.randint(1, 28)


def _ascii(text: str) -> str:
    table = str.maketrans({"ß": "ss", "ł": "l", "Ł": "L", "ı": "i", "ø": "o", "æ": "ae", "đ": "d"})
    folded = unicodedata.normalize("NFKD", text.translate(table)).encode("ascii", "ignore").decode()
    return re.sub(r"[^a-z0-9]", "", folded.lower())


# --------------------------------------------------------------------------------------------- PII values


@dataclass
class _Draw:
    """Per-call drawing state (never module-level): the rng, the people named so far in the snippet,
    whether values must be distinctive (canaries), and which values are already taken."""

    rng: random.Random
    distinctive: bool = False
    taken: set[str] = field(default_factory=set)
    people: list[tuple[str, str]] = field(default_factory=list)


def _name(d: _Draw) -> tuple[str, str]:
    first_names, last_names = NAMES[d.rng.choice(list(NAMES))]
    return d.rng.choice(first_names), d.rng.choice(last_names)


def _person(d: _Draw, variant: str | None) -> str:
    first, last = _name(d)
    d.people.append((first, last))
    if d.distinctive:  # full names, sometimes with a middle initial, so the value is worth grepping for
        middle = d.rng.choice(string.ascii_uppercase)
        return d.rng.choice((f"{first} {last}", f"{first} {middle}. {last}"))
    if variant == "first":
        return first
    style = d.rng.random()
    if style < 0.7:
        return f"{first} {last}"
    if style < 0.85:
        return f"{first} {d.rng.choice(string.ascii_uppercase)}. {last}"
    return f"{first[0]}. {last}"


def _email(d: _Draw, variant: str | None) -> str:
    rng = d.rng
    first, last = d.people[-1] if d.people and rng.random() < 0.6 else _name(d)
    f, la = _ascii(first) or "user", _ascii(last) or "mail"
    tag, number, year = rng.choice(("shop", "news", "work")), rng.randint(1, 99), rng.randint(70, 99)
    local = rng.choice((f"{f}.{la}", f"{f}{la}", f"{f[0]}.{la}", f"{f}_{la}", f"{f}.{la}+{tag}", f"{f}{number}",
                        f"{la}.{f}", f"{f[0]}{la}{year}"))
    if rng.random() < 0.5:
        domain = rng.choice(FREE_MAIL)
    else:
        org = _ascii(rng.choice(ORG_PREFIXES)) + rng.choice(("", "-" + _ascii(rng.choice(ORG_SECTORS))))
        domain = f"{org}.{rng.choice(('com', 'de', 'fr', 'co.uk', 'io', 'nl', 'es', 'it', 'com.br', 'in', 'co.jp'))}"
    if d.distinctive:
        local += str(rng.randint(100, 999))
    return f"{local}@{domain}"


_US_AREAS = ("201", "202", "206", "212", "213", "305", "312", "404", "415", "503", "512", "602", "617", "646",
             "702", "713", "718", "773", "818", "917", "972")
_GB_MOBILE = (("1", _DIGITS), ("2", _DIGITS), ("3", _DIGITS), ("4", "01234789"), ("5", "13456789"), ("7", "1234567"),
              ("8", "0145678"), ("9", "0245678"))
_DE_MOBILE = (("151", 8), ("152", 8), ("157", 8), ("160", 7), ("170", 7), ("171", 7), ("172", 7), ("175", 7),
              ("176", 8), ("177", 7), ("178", 7), ("179", 7))
_NG_MOBILE = ("803", "806", "813", "816", "703", "706", "805", "807", "802", "808", "809", "817", "818", "909")
_CN_MOBILE = ("138", "139", "135", "136", "150", "151", "158", "186", "187", "188", "133", "153", "180", "189")


def _phone(d: _Draw, variant: str | None) -> str:
    rng = d.rng
    region = variant.upper() if variant else rng.choice(PHONE_REGIONS)
    if region == "US":
        area, line = rng.choice(_US_AREAS), _digits(rng, 4)
        ex = rng.choice("23456789") + _digits(rng, 2)
        while ex[1:] == "11" or ex == "555":
            ex = rng.choice("23456789") + _digits(rng, 2)
        forms = (f"({area}) {ex}-{line}", f"{area}-{ex}-{line}", f"{area}.{ex}.{line}", f"+1 {area} {ex} {line}",
                 f"+1 ({area}) {ex}-{line}", f"1-{area}-{ex}-{line}", f"+1{area}{ex}{line}")
    elif region == "GB":
        if rng.random() < 0.65:
            second, thirds = rng.choice(_GB_MOBILE)
            nsn = "7" + second + rng.choice(thirds) + _digits(rng, 7)
            a, b = nsn[:4], nsn[4:]
        else:
            nsn = "20" + rng.choice("378") + _digits(rng, 7)
            a, b = nsn[:2], f"{nsn[2:6]} {nsn[6:]}"
        forms = (f"0{a} {b}", f"+44 {a} {b}", f"+44 (0){a} {b}", f"+44{nsn}")
    elif region == "DE":
        if rng.random() < 0.6:
            prefix, rest = rng.choice(_DE_MOBILE)
        else:
            prefix, rest = rng.choice(("30", "89", "40", "221")), 7
        sub = rng.choice("123456789") + _digits(rng, rest - 1)
        forms = (f"+49 {prefix} {sub}", f"0{prefix} {sub}", f"0{prefix}/{sub}", f"+49 (0){prefix} {sub}",
                 f"0049 {prefix} {sub}", f"+49{prefix}{sub}", f"0{prefix} {_group(sub, (4,), ' ')}")
    elif region == "FR":
        head = rng.choice(("6" + rng.choice("0124578"), "7" + rng.choice("3456789"),
                           rng.choice("12345") + rng.choice("123456789")))
        nsn = head + _digits(rng, 7)
        pairs = " ".join(nsn[i:i + 2] for i in range(1, 9, 2))
        forms = (f"0{nsn[0]} {pairs}", f"+33 {nsn[0]} {pairs}", f"+33 (0){nsn[0]} {pairs}",
                 f"0{nsn[0]}.{pairs.replace(' ', '.')}", f"0{nsn}", f"+33{nsn}")
    elif region == "NL":
        if rng.random() < 0.6:
            nsn = "6" + rng.choice("12345") + _digits(rng, 7)
            forms = (f"0{nsn[0]}-{nsn[1:]}", f"0{nsn[0]} {nsn[1:5]} {nsn[5:]}", f"+31 {nsn[0]} {nsn[1:]}",
                     f"+31 (0){nsn[0]} {nsn[1:]}", f"+31{nsn}")
        else:
            nsn = "20" + rng.choice("123456789") + _digits(rng, 6)
            forms = (f"020 {nsn[2:5]} {nsn[5:]}", f"+31 20 {nsn[2:5]} {nsn[5:]}", f"020-{nsn[2:]}")
    elif region == "ES":
        nsn = rng.choice(("6" + _digits(rng, 8), "91" + rng.choice("123456789") + _digits(rng, 6)))
        forms = (f"{nsn[:3]} {nsn[3:6]} {nsn[6:]}", f"+34 {nsn[:3]} {nsn[3:6]} {nsn[6:]}",
                 f"+34 {nsn[:3]} {nsn[3:5]} {nsn[5:7]} {nsn[7:]}", f"0034 {nsn}", nsn)
    elif region == "IT":
        if rng.random() < 0.7:
            nsn = "3" + rng.choice("23456789") + _digits(rng, 8)
            forms = (f"{nsn[:3]} {nsn[3:6]} {nsn[6:]}", f"+39 {nsn[:3]} {nsn[3:6]} {nsn[6:]}", f"+39 {nsn}",
                     f"{nsn[:3]}-{nsn[3:]}")
        else:
            nsn = "06" + rng.choice("3456789") + _digits(rng, 7)
            forms = (f"06 {nsn[2:6]} {nsn[6:]}", f"+39 06 {nsn[2:6]} {nsn[6:]}", f"+39 {nsn}")
    elif region == "IN":
        nsn = rng.choice("6789") + _digits(rng, 9)
        forms = (f"+91 {nsn[:5]} {nsn[5:]}", f"0{nsn[:5]} {nsn[5:]}", f"+91-{nsn}", f"{nsn[:5]} {nsn[5:]}")
    elif region == "JP":
        nsn = rng.choice(("90", "80", "70")) + rng.choice("123456789") + _digits(rng, 7)
        forms = (f"0{nsn[:2]}-{nsn[2:6]}-{nsn[6:]}", f"+81 {nsn[:2]}-{nsn[2:6]}-{nsn[6:]}",
                 f"+81 {nsn[:2]} {nsn[2:6]} {nsn[6:]}")
    elif region == "BR":
        area, sub = rng.choice(("11", "21", "31", "41", "51", "61", "71", "81")), "9" + _digits(rng, 8)
        local = f"{sub[:5]}-{sub[5:]}"
        forms = (f"+55 {area} {local}", f"({area}) {local}", f"+55 ({area}) {local}")
    elif region == "AU":
        nsn = "4" + rng.choice("01236") + _digits(rng, 7)
        forms = (f"0{nsn[:3]} {nsn[3:6]} {nsn[6:]}", f"+61 {nsn[:3]} {nsn[3:6]} {nsn[6:]}",
                 f"+61 {nsn[0]} {nsn[1:5]} {nsn[5:]}")
    elif region == "NG":
        nsn = rng.choice(_NG_MOBILE) + _digits(rng, 7)
        forms = (f"0{nsn[:3]} {nsn[3:6]} {nsn[6:]}", f"+234 {nsn[:3]} {nsn[3:6]} {nsn[6:]}", f"+234{nsn}")
    elif region == "CN":
        nsn = rng.choice(_CN_MOBILE) + _digits(rng, 8)
        forms = (f"+86 {nsn[:3]} {nsn[3:7]} {nsn[7:]}", f"{nsn[:3]} {nsn[3:7]} {nsn[7:]}", f"+86-{nsn}")
    else:
        raise ValueError(f"unknown phone region {variant!r}")
    return rng.choice(forms)


# brand: (length, prefix maker, grouping)
_CARD_BRANDS: tuple[tuple[str, int, Callable[[random.Random], str], tuple[int, ...]], ...] = (
    ("visa", 16, lambda r: "4", (4, 4, 4, 4)),
    ("mastercard", 16, lambda r: r.choice((str(r.randint(51, 55)), str(r.randint(2221, 2720)))), (4, 4, 4, 4)),
    ("amex", 15, lambda r: r.choice(("34", "37")), (4, 6, 5)),
    ("discover", 16, lambda r: r.choice(("6011", "65", str(r.randint(644, 649)))), (4, 4, 4, 4)),
    ("jcb", 16, lambda r: str(r.randint(3528, 3589)), (4, 4, 4, 4)),
    ("diners", 14, lambda r: r.choice(("36", "38")), (4, 6, 4)),
    ("unionpay", 16, lambda r: "62" + r.choice("2458"), (4, 4, 4, 4)),
)


def _card_number(rng: random.Random) -> tuple[str, tuple[int, ...]]:
    _, length, prefix_of, groups = rng.choices(_CARD_BRANDS, weights=(5, 4, 2, 1, 1, 1, 1))[0]
    payload = prefix_of(rng)
    payload += _digits(rng, length - 1 - len(payload))
    return payload + _luhn_digit(payload), groups


def _credit_card(d: _Draw, variant: str | None) -> str:
    number, groups = _card_number(d.rng)
    return _group(number, groups, d.rng.choice((" ", " ", "-", "")))


def _bban(rng: random.Random, cc: str) -> str:
    """A BBAN for `cc` with the structure of the IBAN registry (and national check digits where defined)."""
    if cc == "DE":
        return _digits(rng, 18)
    if cc in ("GB", "IE"):
        bank = rng.choice(("NWBK", "BARC", "LOYD", "HBUK", "MIDL") if cc == "GB" else ("AIBK", "BOFI", "IPBS"))
        return bank + _digits(rng, 14)
    if cc == "FR":  # bank, branch, account, RIB key
        bank = rng.choice(("30004", "20041", "30003", "10278", "17515"))
        branch, account = _digits(rng, 5), _digits(rng, 11)
        key = 97 - (89 * int(bank) + 15 * int(branch) + 3 * int(account)) % 97
        return f"{bank}{branch}{account}{key:02d}"
    if cc == "NL":
        return rng.choice(("ABNA", "INGB", "RABO", "SNSB", "TRIO", "KNAB", "BUNQ")) + _digits(rng, 10)
    if cc == "IT":  # CIN letter, ABI, CAB, account
        return rng.choice(string.ascii_uppercase) + rng.choice(("03069", "02008", "05034", "01030")) + _digits(rng, 17)
    if cc == "ES":  # bank, branch, CCC check digits, account
        bank_branch, account = rng.choice(("2100", "0049", "0182", "2038")) + _digits(rng, 4), _digits(rng, 10)

        def ccc(digits: str) -> str:
            check = sum(int(n) * 2 ** i for i, n in enumerate(digits)) % 11
            return str(check if check < 2 else 11 - check)

        return bank_branch + ccc("00" + bank_branch) + ccc(account) + account
    if cc == "PT":  # NIB: bank, branch, account, ISO 7064 mod 97-10 check
        body = rng.choice(("0002", "0007", "0033", "0035")) + _digits(rng, 15)
        return body + f"{98 - int(body) * 100 % 97:02d}"
    lengths = {"AT": 16, "CH": 17, "PL": 24, "SE": 20, "FI": 14, "DK": 14}
    return _digits(rng, lengths[cc])


def _iban_compact(rng: random.Random, cc: str) -> str:
    bban = _bban(rng, cc)
    check = 98 - _mod97(bban + cc + "00")
    return f"{cc}{check:02d}{bban}"


def _iban(d: _Draw, variant: str | None) -> str:
    compact = _iban_compact(d.rng, variant.upper() if variant else d.rng.choice(IBAN_COUNTRIES))
    return _group(compact, (4,) * 9, " ") if d.rng.random() < 0.65 else compact


def _us_ssn(d: _Draw, variant: str | None) -> str:
    rng = d.rng
    while True:
        area = rng.randint(1, 899)
        value = f"{area:03d}-{rng.randint(1, 99):02d}-{rng.randint(1, 9999):04d}"
        if area != 666 and _ssn_ok(value):
            return value if rng.random() < 0.8 else value.replace("-", "")


def _eu_id(d: _Draw, variant: str | None) -> str:
    rng = d.rng
    scheme = variant or rng.choice(EU_ID_SCHEMES)
    if scheme == "de":  # Steuer-IdNr: one digit twice or three times in the first ten, ISO 7064 mod 11,10
        while True:
            repeated, times = rng.choice(_DIGITS), rng.choice((2, 3))
            others = rng.sample([x for x in _DIGITS if x != repeated], 10 - times)
            body = [repeated] * times + others
            rng.shuffle(body)
            if body[0] != "0":
                break
        digits = "".join(body)
        value = digits + str((1 - ((_mod_11_10(digits) or 10) * 2) % 11) % 10)
        return rng.choice((value, f"{value[:2]} {value[2:5]} {value[5:8]} {value[8:]}"))
    if scheme == "nl":  # BSN: 11-proof
        while True:
            body = rng.choice("123456") + _digits(rng, 7)
            last = sum((9 - i) * int(x) for i, x in enumerate(body)) % 11
            if last < 10:
                value = body + str(last)
                return rng.choice((value, f"{value[:4]}.{value[4:6]}.{value[6:]}"))
    if scheme == "es":  # DNI: 8 digits + mod-23 letter
        body = f"{rng.randint(1000000, 99999999):08d}"
        return body + rng.choice(("", "-")) + "TRWAGMYFPDXBNJZSQVHLCKE"[int(body) % 23]
    if scheme == "fr":  # NIR: sex, year, month, department, commune, order, key
        year, month, _ = _birth(rng)
        dept = rng.choice((f"{rng.choice([x for x in range(1, 96) if x != 20]):02d}", "2A", "2B"))
        body = f"{rng.choice('12')}{year % 100:02d}{month:02d}{dept}{rng.randint(1, 990):03d}{rng.randint(1, 999):03d}"
        numeric = body[:5] + {"2A": "19", "2B": "18"}.get(dept, dept) + body[7:]
        value = body + f"{97 - int(numeric) % 97:02d}"
        return rng.choice((value, " ".join((value[0], value[1:3], value[3:5], value[5:7], value[7:10],
                                            value[10:13], value[13:]))))
    if scheme == "pl":  # PESEL: birth date (month + 20 after 2000), serial, weighted check digit
        year, month, day = _birth(rng)
        body = f"{year % 100:02d}{month + (20 if year >= 2000 else 0):02d}{day:02d}{_digits(rng, 4)}"
        weights = (1, 3, 7, 9, 1, 3, 7, 9, 1, 3)
        return body + str((10 - sum(w * int(x) for w, x in zip(weights, body, strict=True))) % 10)
    if scheme == "fi":  # HETU: ddmmyy, century sign, individual number, mod-31 control character
        year, month, day = _birth(rng)
        stem, individual = f"{day:02d}{month:02d}{year % 100:02d}", f"{rng.randint(2, 899):03d}"
        control = "0123456789ABCDEFHJKLMNPRSTUVWXY"[int(stem + individual) % 31]
        return f"{stem}{'-' if year < 2000 else 'A'}{individual}{control}"
    if scheme == "se":  # personnummer: (yy)yymmdd-nnnc, Luhn over the last ten digits
        year, month, day = _birth(rng)
        body = f"{year % 100:02d}{month:02d}{day:02d}{_digits(rng, 3)}"
        check = _luhn_digit(body)
        return rng.choice((f"{body[:6]}-{body[6:]}{check}", f"{year // 100}{body[:6]}-{body[6:]}{check}"))
    raise ValueError(f"unknown national id scheme {variant!r}")


def _ip(d: _Draw, variant: str | None) -> str:
    rng = d.rng
    version = variant or rng.choice(("v4", "v4", "v4", "v6"))
    if version == "v4":
        kind = rng.random()
        if kind < 0.25:
            return f"10.{rng.randint(0, 255)}.{rng.randint(0, 255)}.{rng.randint(1, 254)}"
        if kind < 0.4:
            return f"192.168.{rng.randint(0, 255)}.{rng.randint(1, 254)}"
        if kind < 0.5:
            return f"172.{rng.randint(16, 31)}.{rng.randint(0, 255)}.{rng.randint(1, 254)}"
        first = rng.choice([x for x in range(1, 224) if x not in (10, 100, 127, 169, 172, 192)])
        return f"{first}.{rng.randint(0, 255)}.{rng.randint(0, 255)}.{rng.randint(1, 254)}"
    if rng.random() < 0.2:
        groups = [0xFE80, 0, 0, 0] + [rng.getrandbits(16) for _ in range(4)]
    else:
        groups = [rng.choice((0x2001, 0x2A02, 0x2600, 0x2A00, 0x2C0F, 0x240E)), rng.getrandbits(16),
                  rng.getrandbits(16)] + [rng.getrandbits(16) if rng.random() < 0.6 else 0 for _ in range(5)]
    addr = ipaddress.IPv6Address(int("".join(f"{g:04x}" for g in groups), 16))
    return rng.choice((addr.compressed, addr.compressed, addr.exploded, addr.compressed.upper()))


def _b64url(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _secret(d: _Draw, variant: str | None) -> str:
    rng = d.rng
    kind = variant or rng.choice(SECRET_KINDS)
    if kind == "openai":
        return "sk-" + _chars(rng, _BASE62, 48)
    if kind == "openai_project":
        return "sk-proj-" + _chars(rng, _BASE62 + "-_", 64)
    if kind == "anthropic":
        return "sk-ant-api03-" + _chars(rng, _BASE62 + "-_", 93) + "AA"
    if kind == "github":
        return rng.choice(("ghp_", "gho_", "ghs_")) + _chars(rng, _BASE62, 36)
    if kind == "github_pat":
        return f"github_pat_{_chars(rng, _UPPER_DIGITS, 22)}_{_chars(rng, _BASE62, 59)}"
    if kind == "aws":
        return rng.choice(("AKIA", "ASIA")) + _chars(rng, string.ascii_uppercase + "234567", 16)
    if kind == "aws_secret":
        return _chars(rng, _BASE62 + "/+", 40)
    if kind == "slack":
        return f"{rng.choice(('xoxb', 'xoxp'))}-{_digits(rng, 12)}-{_digits(rng, 13)}-{_chars(rng, _BASE62, 24)}"
    if kind == "stripe":
        return rng.choice(("sk_live_", "rk_live_")) + _chars(rng, _BASE62, 24)
    if kind == "google":
        return "AIza" + _chars(rng, _BASE62 + "-_", 35)
    if kind == "sendgrid":
        return f"SG.{_chars(rng, _BASE62 + '-_', 22)}.{_chars(rng, _BASE62 + '-_', 43)}"
    if kind == "jwt":
        header = _b64url(b'{"alg":"HS256","typ":"JWT"}')
        claims = {"sub": str(rng.randint(10**5, 10**9)), "iat": rng.randint(1_650_000_000, 1_760_000_000),
                  "scope": rng.choice(("read", "read write", "admin"))}
        payload = _b64url(json.dumps(claims, separators=(",", ":")).encode())
        return f"{header}.{payload}.{_b64url(rng.getrandbits(256).to_bytes(32, 'big'))}"
    if kind == "generic":
        return rng.choice((_chars(rng, "0123456789abcdef", rng.choice((32, 40, 64))), _chars(rng, _BASE62, 40)))
    if kind == "password":
        return _chars(rng, _BASE62, 10) + _chars(rng, "!*_-", 2) + _chars(rng, _BASE62, 4)
    raise ValueError(f"unknown secret kind {variant!r}")


def _postcode(rng: random.Random, country: str) -> str:
    if country == "uk":
        area, district = rng.choice(("M", "LS", "BS", "G", "EH", "CF")), rng.randint(1, 20)
        return f"{area}{district} {rng.randint(1, 9)}{_chars(rng, 'ABDEFGHJLNPQRSTUWXYZ', 2)}"
    if country == "nl":
        return f"{rng.randint(1000, 9999)} {_chars(rng, 'ABCDEFGHJKLMNPRSTVWXZ', 2)}"
    if country == "jp":
        return f"{rng.randint(100, 999)}-{_digits(rng, 4)}"
    if country == "in":
        return f"{rng.randint(110001, 695999)}"
    if country == "br":
        return f"{rng.randint(10000, 99999)}-{_digits(rng, 3)}"
    if country == "ng":
        return f"{rng.randint(100001, 999999)}"
    return f"{rng.randint(10000, 99999)}"


def _location(d: _Draw, variant: str | None) -> str:
    rng = d.rng
    style = "address" if d.distinctive else variant or rng.choice(("city", "city", "city_country", "country", "address",
                                                                  "address"))
    if style == "address":
        country = rng.choice(list(ADDRESSES))
        cities, streets, fmt = ADDRESSES[country]
        if country == "jp":  # chome-banchi-go
            n = f"{rng.randint(1, 9)}-{rng.randint(1, 30)}-{rng.randint(1, 20)}"
        else:
            n = str(rng.randint(1, 240))
        return fmt.format(n=n, s=rng.choice(streets), c=rng.choice(cities), p=_postcode(rng, country))
    city, country_name = rng.choice(CITIES)
    return {"city": city, "city_country": f"{city}, {country_name}", "country": country_name}[style]


def _organization(d: _Draw, variant: str | None) -> str:
    rng = d.rng
    if not d.distinctive and rng.random() < 0.3:
        return rng.choice(REAL_ORGS)
    name = f"{rng.choice(ORG_PREFIXES)} {rng.choice(ORG_SECTORS)}"
    return f"{name} {rng.choice(ORG_FORMS)}" if d.distinctive or rng.random() < 0.6 else name


_PII: dict[str, Callable[[_Draw, str | None], str]] = {
    EMAIL: _email, PHONE: _phone, CREDIT_CARD: _credit_card, IBAN: _iban, US_SSN: _us_ssn, EU_NATIONAL_ID: _eu_id,
    IP_ADDRESS: _ip, SECRET: _secret, PERSON: _person, LOCATION: _location, ORGANIZATION: _organization,
}

# --------------------------------------------------------------------------------------------- decoys


def _decoy_value(rng: random.Random, kind: str, variant: str | None) -> str:
    year = rng.randint(2019, 2026)
    if kind == "order_number":
        return rng.choice((f"#{rng.randint(10000, 999999)}", f"ORD-{year}-{rng.randint(1, 99999):05d}",
                           str(rng.randint(1000000, 99999999)),
                           f"PO-{rng.randint(1000, 9999)}-{_chars(rng, 'ABCDEFGHJK', 2)}"))
    if kind == "invoice_number":
        return rng.choice((f"INV-{year}-{rng.randint(1, 9999):04d}", f"F{year}/{rng.randint(1, 999):03d}",
                           f"RE-{rng.randint(100000, 999999)}"))
    if kind == "tracking_number":
        return rng.choice((f"1Z{_chars(rng, _UPPER_DIGITS, 6)}0{rng.randint(1, 9)}{_digits(rng, 8)}",
                           f"{_chars(rng, 'CELRV', 1)}{_chars(rng, string.ascii_uppercase, 1)}{_digits(rng, 9)}GB",
                           _group("9400" + _digits(rng, 18), (4,) * 6, " "), f"JD{_digits(rng, 16)}"))
    if kind == "timestamp":
        month, day = rng.randint(1, 12), rng.randint(1, 28)
        hh, mm, ss = rng.randint(0, 23), rng.randint(0, 59), rng.randint(0, 59)
        return rng.choice((f"{year}-{month:02d}-{day:02d}T{hh:02d}:{mm:02d}:{ss:02d}Z",
                           f"{year}-{month:02d}-{day:02d} {hh:02d}:{mm:02d}:{ss:02d},{rng.randint(0, 999):03d}",
                           f"{year}-{month:02d}-{day:02d}T{hh:02d}:{mm:02d}:{ss:02d}.{_digits(rng, 6)}+00:00"))
    if kind == "date":
        month, day = rng.randint(1, 12), rng.randint(1, 28)
        months = ("January", "February", "March", "April", "May", "June", "July", "August", "September", "October",
                  "November", "December")
        return rng.choice((f"{year}-{month:02d}-{day:02d}", f"{day:02d}/{month:02d}/{year}", f"{day}.{month}.{year}",
                           f"{months[month - 1]} {day}, {year}", f"{day} {months[month - 1][:3]} {year}"))
    if kind == "time":
        hour, minute = rng.randint(0, 23), rng.randint(0, 59)
        half = "pm" if hour >= 12 else "am"
        return rng.choice((f"{hour:02d}:{minute:02d}", f"{hour % 12 or 12}:{minute:02d} {half}"))
    if kind == "version":
        major, minor, patch = rng.randint(1, 12), rng.randint(0, 20), rng.randint(0, 40)
        build, revision = rng.randint(19041, 26100), rng.randint(256, 4000)  # > 255: never an IPv4 address
        return rng.choice((f"v{major}.{minor}.{patch}", f"10.0.{build}", f"10.0.{build}.{revision}",
                           f"{major % 3 + 4}.{minor}.{patch}-{revision % 120 + 1}-generic"))
    if kind == "semver":
        base = f"{rng.randint(0, 4)}.{rng.randint(0, 30)}.{rng.randint(0, 15)}"
        return rng.choice((base, base, f"{base}-rc.{rng.randint(1, 5)}", f"{base}-beta.{rng.randint(1, 9)}",
                           f"{base}+build.{rng.randint(1, 999)}"))
    if kind == "price":
        whole, cents = rng.randint(1, 4999), rng.randint(0, 99)
        return rng.choice((f"${whole:,}.{cents:02d}", f"€{whole},{cents:02d}", f"{whole},{cents:02d} €",
                           f"£{whole:,}.{cents:02d}", f"USD {whole:,}.{cents:02d}", f"¥{whole * 100:,}",
                           f"CHF {whole}.{cents:02d}", f"{whole},{cents:02d} zł", f"₹{whole:,}"))
    if kind == "sku":
        colour, size = rng.choice(("BLK", "WHT", "RED", "NVY")), rng.choice(("S", "M", "L", "64"))
        return rng.choice((f"SKU-{_chars(rng, string.ascii_uppercase, 2)}{_digits(rng, 2)}-{_digits(rng, 4)}",
                           f"{_chars(rng, 'XYZ', 1)}{rng.randint(100, 900)}-{colour}-{size}",
                           f"{_chars(rng, string.ascii_uppercase, 3)}-{_digits(rng, 5)}"))
    if kind == "uuid":
        value = str(uuid.UUID(int=rng.getrandbits(128), version=4))
        return value.upper() if rng.random() < 0.2 else value
    if kind == "non_luhn_number":
        payload = rng.choice("3456") + _digits(rng, 14)
        right = _luhn_digit(payload)
        number = payload + rng.choice([x for x in _DIGITS if x != right])
        return _group(number, (4, 4, 4, 4), rng.choice((" ", "-", "")))
    if kind == "bad_iban":
        good = _iban_compact(rng, rng.choice(IBAN_COUNTRIES))
        bad = good[:2] + f"{(int(good[2:4]) + rng.randint(1, 90)) % 100:02d}" + good[4:]
        return _group(bad, (4,) * 9, " ") if rng.random() < 0.6 else bad
    if kind == "non_ssn_number":
        area = rng.choice(("000", "666", str(rng.randint(900, 999))))
        value = f"{area}-{rng.randint(0, 99):02d}-{_digits(rng, 4)}"
        return value if rng.random() < 0.5 else value.replace("-", "")
    if kind == "non_id_number":
        return rng.choice((str(rng.randint(1, 9)) + _digits(rng, 10), str(rng.randint(1, 9)) + _digits(rng, 8)))
    if kind == "git_hash":
        return _chars(rng, "0123456789abcdef", 7 if variant == "short" else 40)
    if kind == "checksum":
        return _chars(rng, "0123456789abcdef", 64)
    if kind == "hex_colour":
        return rng.choice((f"#{rng.getrandbits(24):06X}", f"#{rng.getrandbits(24):06x}", f"#{rng.getrandbits(12):03x}"))
    if kind == "isbn":
        body = rng.choice(("978", "979")) + _digits(rng, 9)
        check = str((10 - sum(int(x) * (3 if i % 2 else 1) for i, x in enumerate(body)) % 10) % 10)
        number = body + check
        return rng.choice((f"{number[:3]}-{number[3]}-{number[4:8]}-{number[8:12]}-{number[12]}", number))
    if kind == "last4":
        return _digits(rng, 4)
    raise ValueError(f"unknown decoy kind {kind!r}")


def _decoy(rng: random.Random, kind: str, variant: str | None) -> str:
    """A decoy value that fails every structural PII check (re-drawn until it does)."""
    for _ in range(200):
        value = _decoy_value(rng, kind, variant)
        if not looks_structured(value):
            return value
    raise RuntimeError(f"could not draw a decoy {kind!r} that fails the PII checks")


# --------------------------------------------------------------------------------------------- rendering


def _render(template: str, d: _Draw, accept: Callable[[str], bool]) -> tuple[str, tuple[Span, ...], tuple[Span, ...]]:
    """Fill the slots of `template` left to right; PII values must pass `accept` (re-drawn until they do)."""
    d.people.clear()
    out: list[str] = []
    spans: list[Span] = []
    decoys: list[Span] = []
    pos = last = 0
    for m in _SLOT.finditer(template):
        literal = template[last:m.start()]
        out.append(literal)
        pos += len(literal)
        name, variant = m.group(1), m.group(2)
        if name in _PII:
            for _ in range(200):
                value = _PII[name](d, variant)
                if value not in d.taken and accept(value):
                    break
            else:
                raise RuntimeError(f"could not draw an acceptable {name} value")
            d.taken.add(value)
            spans.append(Span(name, pos, pos + len(value), value))
        elif name in DECOY_KINDS:
            value = _decoy(d.rng, name, variant)
            decoys.append(Span(name, pos, pos + len(value), value))
        else:
            raise KeyError(f"unknown slot {m.group(0)!r}")
        out.append(value)
        pos += len(value)
        last = m.end()
    out.append(template[last:])
    return "".join(out), tuple(spans), tuple(decoys)


def _wrap(rng: random.Random, body: str) -> str:
    """Sometimes put a greeting and a sign-off around a prose template."""
    if rng.random() < 0.5:
        return body
    greeting, signoff = rng.choice(GREETINGS), rng.choice(SIGNOFFS)
    return "\n\n".join(p for p in (greeting, body, signoff) if p)


def _slots(category: str) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """Prose and raw templates that contain a `category` slot (its own, then the mixed ones)."""
    prose, raw = TEMPLATES[category]
    mixed = tuple(t for t in MIXED if f"<<{category}" in t)
    return prose, raw + mixed


def _positive_template(rng: random.Random, category: str) -> str:
    prose, raw = _slots(category)
    if rng.random() < 0.5:
        return _wrap(rng, rng.choice(prose))
    return rng.choice(raw)


def _hard_negative_template(rng: random.Random) -> str:
    prose, raw = HARD_NEGATIVES
    if rng.random() < 0.55:
        return _wrap(rng, rng.choice(prose))
    return rng.choice(raw)


def generate_eval_set(n: int = 400, seed: int = 13) -> list[Snippet]:
    """A labelled evaluation set: 30% hard negatives, positives cycling through `CATEGORIES`.

    The generator is prefix-stable: the first k snippets of `generate_eval_set(n)` are `generate_eval_set(k)`.
    """
    rng = random.Random(seed)
    snippets: list[Snippet] = []
    positives = 0
    for i in range(n):
        draw = _Draw(rng)
        if i % 10 in (2, 5, 8):
            kind, template = "hard_negative", _hard_negative_template(rng)
        else:
            kind, template = "positive", _positive_template(rng, CATEGORIES[positives % len(CATEGORIES)])
            positives += 1
        text, spans, decoys = _render(template, draw, accept=lambda v: True)
        snippets.append(Snippet(f"pii-{i:04d}", text, spans, kind, decoys))
    return snippets


def generate_canaries(n: int = 240, seed: int = 17) -> list[Snippet]:
    """A canary corpus: every planted value is unique across the corpus and occurs exactly once in it.

    No value is a substring of another value or of any other text, so grepping a remote payload or a
    trace for `canary_values(...)` attributes every hit to one planted value. Main categories cycle
    through `CATEGORIES`; contexts are chat turns, JSON, tool-call arguments and the eval templates.
    """
    rng = random.Random(seed)
    used: list[str] = []
    texts: list[str] = []
    snippets: list[Snippet] = []

    def fresh(value: str) -> bool:
        return not any(value in u or u in value for u in used) and not any(value in t for t in texts)

    for i in range(n):
        category = CATEGORIES[i % len(CATEGORIES)]
        own = tuple(t for t in CANARY_TEMPLATES if f"<<{category}" in t)
        for _ in range(100):
            draw = _Draw(rng, distinctive=True, taken=set(used))
            template = rng.choice(own) if own and rng.random() < 0.5 else _positive_template(rng, category)
            text, spans, decoys = _render(template, draw, accept=fresh)
            values = [s.value for s in spans]
            if (all(text.count(v) == 1 for v in values) and not any(u in text for u in used)
                    and not any(a != b and a in b for a in values for b in values)):
                break
        else:
            raise RuntimeError("could not plant unique canary values")
        used.extend(values)
        texts.append(text)
        snippets.append(Snippet(f"canary-{i:04d}", text, spans, "positive", decoys))
    return snippets


def canary_values(snippets: Iterable[Snippet]) -> set[str]:
    """Every planted PII value in `snippets` (what to grep remote payloads and traces for)."""
    return {span.value for snippet in snippets for span in snippet.spans}


def to_jsonl(snippets: Iterable[Snippet]) -> str:
    """One JSON object per line: id, kind, text, spans and decoys (category, start, end, value)."""

    def spans(items: tuple[Span, ...]) -> list[dict[str, object]]:
        return [{"category": s.category, "start": s.start, "end": s.end, "value": s.value} for s in items]

    lines = [json.dumps({"id": s.id, "kind": s.kind, "text": s.text, "spans": spans(s.spans),
                         "decoys": spans(s.decoys)}, ensure_ascii=False) for s in snippets]
    return "".join(line + "\n" for line in lines)

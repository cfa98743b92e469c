"""Reproducible "agent step" workload: one user request, ten tools, gold calls or a gold text reply.

How it is generated (fixed seed, pure Python `random`): pick what the request needs — about 20% need
no tool (chit-chat, general knowledge, thanks; the gold is a short text reply), about 7% need two
calls (the weather in two cities, the prices of two stocks), the rest one call of a tool drawn
uniformly — then draw the slot values (cities, e-mail addresses, tickers, order numbers, amounts and
currency codes, times, languages, products, time zones ...) and write the request from one of
several templates for that need, with light noise (a greeting, a trailing thanks).

Gold arguments are recoverable from the text: every value is a span of it (compared
case-insensitively), or, in the shifted set only, stands behind a phrase of `ALIASES` ("the Big Apple"
-> "New York", "$aapl" -> "AAPL", "6:30pm" -> "18:30", "español" -> "spanish"). Numbers appear as
written (the shifted set may add thousands separators). Optional arguments (`unit`, `max_price`) are
in the gold only when the text states them. Every gold call satisfies its tool's parameter schema.

The shifted set (`generate_shifted_agent_requests`) uses templates, aliases and noise (typos in the
template's own words, extra clauses, lowercase) that never occur in the main set: a specialist
distilled from the main set is tested on it to show how much it learnt the task rather than the
templates. Same seed, same requests; the first k of `n` requests are the k requests of `n=k`.
"""

from __future__ import annotations

import json
import random
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from smallfleet.constrain.spec import ToolSpec
from smallfleet.constrain.toolformat import recorded_calls
from smallfleet.evals.tool_suite import TOOLS, Expected, call_matches

Call = tuple[str, dict[str, Any]]
Aliases = dict[str, tuple[str, ...]]  # gold value -> the phrases that stand for it

AGENT_TOOLS: tuple[ToolSpec, ...] = tuple(TOOLS[name] for name in (
    "get_weather", "send_email", "create_ticket", "get_stock_price", "convert_currency", "lookup_order",
    "set_reminder", "translate", "search_products", "get_time"))

INSTRUCTIONS = ("You are the assistant of a small business. When a tool can do what the user asks, call it, with "
                "the arguments taken from the request; when no tool is needed, answer briefly in plain text.")


@dataclass(frozen=True)
class AgentRequest:
    id: str
    text: str
    calls: tuple[Call, ...]  # the gold calls, (name, arguments); empty when no tool is needed
    reply: str  # the gold text reply when no tool is needed, else ""
    shifted: bool


# --- slot values -------------------------------------------------------------------------------------

CITIES = ("Paris", "Tokyo", "Oslo", "Lisbon", "Nairobi", "Toronto", "Sydney", "Buenos Aires", "Cairo", "Mumbai",
          "Seoul", "Berlin", "Madrid", "Chicago", "Denver", "Reykjavik", "Cape Town", "Hanoi", "Lima", "Dublin",
          "Rome", "New York")
UNIT_CLAUSES = {"fahrenheit": (" in fahrenheit", " in Fahrenheit please"),
                "celsius": (" in celsius", " in degrees Celsius")}
PEOPLE = ("anna", "bob", "chen.li", "d.okafor", "maria", "sam.r", "priya", "tom.h", "lena.k", "yusuf")
DOMAINS = ("example.com", "corp.io", "northwind.org", "acme.dev", "mailbox.net")
SUBJECTS = ("Lunch", "Quarterly report", "Meeting moved", "Invoice 2231", "Welcome aboard", "Server maintenance",
            "Holiday plans", "Budget review", "Contract draft", "Team offsite")
BODIES = ("See you at noon", "The report is attached", "The meeting is now on Thursday at 3pm",
          "Please review the numbers before Friday", "Happy to have you on the team",
          "The servers will be offline on Sunday night", "Can we move our call to next week",
          "Thanks for the quick turnaround", "Let me know if anything is missing", "Dinner is on me this time")
TITLES = ("checkout page is down", "login button does nothing", "invoice PDF is blank",
          "password reset email never arrives", "search returns no results", "dark mode colours are unreadable",
          "app crashes on startup", "cannot upload a profile photo", "export to CSV times out",
          "typo on the pricing page", "refund button shows an error", "notifications arrive twice")
PRIORITIES = ("low", "medium", "high")
TICKERS = {"AAPL": "Apple", "MSFT": "Microsoft", "GOOGL": "Alphabet", "AMZN": "Amazon", "TSLA": "Tesla",
           "NVDA": "Nvidia", "META": "Meta", "NFLX": "Netflix", "IBM": "IBM", "INTC": "Intel", "ORCL": "Oracle",
           "KO": "Coca-Cola", "DIS": "Disney", "NKE": "Nike"}
CURRENCIES = ("USD", "EUR", "GBP", "JPY", "CHF", "CAD", "AUD", "SEK", "INR")
TASKS = ("call mom", "take my pills", "water the plants", "submit the expense report", "pick up the kids",
         "stretch", "join the standup", "book the dentist", "pay the rent", "walk the dog")
LANGUAGES = ("french", "spanish", "german", "italian", "japanese")
PHRASES = ("good night", "thank you very much", "where is the train station", "I would like a coffee",
           "see you tomorrow", "happy birthday", "the meeting is cancelled", "how much does this cost",
           "my flight is delayed", "nice to meet you")
QUERIES = ("wireless headphones", "yoga mats", "running shoes", "standing desks", "mechanical keyboards",
           "USB-C chargers", "coffee grinders", "hiking backpacks", "phone cases", "desk lamps", "water bottles",
           "office chairs")
PRICES = (15, 20, 25, 30, 40, 50, 75, 100, 150, 200, 250, 300, 500)
ZONES = ("Europe/Berlin", "Asia/Tokyo", "America/New_York", "Europe/London", "Australia/Sydney",
         "America/Los_Angeles", "Asia/Kolkata", "Africa/Nairobi", "America/Sao_Paulo", "Europe/Paris",
         "Asia/Singapore")

# What stands for a gold value in the shifted set: argument -> gold value -> phrases in the text.
CITY_ALIASES: Aliases = {
    "New York": ("the Big Apple",), "Chicago": ("the Windy City",), "Paris": ("the City of Light",),
    "Rome": ("the Eternal City",), "Denver": ("the Mile High City",), "Las Vegas": ("Sin City",),
    "Los Angeles": ("the City of Angels",)}
UNIT_ALIASES: Aliases = {"fahrenheit": ("°F", "imperial units"), "celsius": ("°C", "metric units")}
PRIORITY_ALIASES: Aliases = {"high": ("P1", "sev-1", "critical"), "medium": ("P2", "normal"), "low": ("P3", "minor")}
CURRENCY_NAMES: Aliases = {
    "USD": ("US dollars",), "EUR": ("euros",), "GBP": ("British pounds",), "JPY": ("Japanese yen",),
    "CHF": ("Swiss francs",), "CAD": ("Canadian dollars",), "AUD": ("Australian dollars",),
    "SEK": ("Swedish kronor",), "INR": ("Indian rupees",)}
SPOKEN_TIMES: Aliases = {
    "06:30": ("6:30am",), "07:00": ("7 am",), "08:15": ("quarter past eight in the morning",), "12:00": ("noon",),
    "13:15": ("1:15 pm",), "17:45": ("5:45pm",), "18:30": ("half past six in the evening",), "20:00": ("8 pm",),
    "21:30": ("9:30 at night",), "22:00": ("10pm",)}
LANGUAGE_ALIASES: Aliases = {"french": ("français",), "spanish": ("español",), "german": ("Deutsch",),
                             "italian": ("italiano",), "japanese": ("nihongo",)}
ZONE_ALIASES: Aliases = {
    "Asia/Tokyo": ("Tokyo",), "America/New_York": ("NYC",), "Europe/London": ("London",),
    "America/Los_Angeles": ("Los Angeles",), "Asia/Kolkata": ("India",), "Australia/Sydney": ("Sydney",),
    "Europe/Berlin": ("Berlin",), "Europe/Paris": ("Paris",), "Asia/Singapore": ("Singapore",),
    "America/Sao_Paulo": ("São Paulo",), "Africa/Nairobi": ("Nairobi",)}
ALIASES: dict[str, Aliases] = {
    "city": CITY_ALIASES, "unit": UNIT_ALIASES, "priority": PRIORITY_ALIASES,
    "symbol": {t: (c,) for t, c in TICKERS.items()}, "from_currency": CURRENCY_NAMES, "to_currency": CURRENCY_NAMES,
    "time": SPOKEN_TIMES, "target_language": LANGUAGE_ALIASES, "timezone": ZONE_ALIASES}

COUNTRIES = {"Italy": "Rome", "France": "Paris", "Japan": "Tokyo", "Kenya": "Nairobi", "Canada": "Ottawa",
             "Australia": "Canberra", "Brazil": "Brasília", "Egypt": "Cairo", "Norway": "Oslo", "Peru": "Lima",
             "Portugal": "Lisbon", "Spain": "Madrid", "Germany": "Berlin", "India": "New Delhi",
             "South Korea": "Seoul", "Vietnam": "Hanoi", "Ireland": "Dublin", "Argentina": "Buenos Aires",
             "Iceland": "Reykjavik", "Mexico": "Mexico City", "Poland": "Warsaw", "Thailand": "Bangkok",
             "Chile": "Santiago", "Greece": "Athens"}
BOOKS = {"Romeo and Juliet": "William Shakespeare", "Pride and Prejudice": "Jane Austen", "1984": "George Orwell",
         "Don Quixote": "Miguel de Cervantes", "War and Peace": "Leo Tolstoy", "The Odyssey": "Homer",
         "Frankenstein": "Mary Shelley", "Moby-Dick": "Herman Melville", "Hamlet": "William Shakespeare",
         "Jane Eyre": "Charlotte Brontë"}
FACTS = {
    "What is a ticker symbol?": "A ticker symbol is a short code for a company's shares on an exchange, "
                                "such as AAPL for Apple.",
    "Why do exchange rates change?": "Exchange rates move with supply and demand for each currency, driven by "
                                     "interest rates, trade and expectations.",
    "What does 'ephemeral' mean?": "Ephemeral means lasting a very short time.",
    "Give me a tip for better sleep.": "Keep a regular bedtime and avoid screens for the hour before it.",
    "How many minutes are in a day?": "There are 1,440 minutes in a day.",
    "Explain photosynthesis in one sentence.": "Photosynthesis is how plants turn light, water and carbon dioxide "
                                               "into sugar and oxygen.",
    "What is the boiling point of water at sea level?": "Water boils at 100 °C (212 °F) at sea level.",
    "Why is the sky blue?": "Air scatters blue light more than red light, so the sky looks blue.",
    "How do time zones work?": "Time zones divide the world into regions that keep the same clock time, mostly "
                               "one hour apart.",
    "What is a good name for a puppy?": "How about Biscuit?",
}
SOCIAL = {
    "Hi! How are you today?": "I'm doing well, thanks for asking. How can I help?",
    "Hello there!": "Hello! How can I help you today?",
    "Good morning!": "Good morning! What can I do for you?",
    "Thanks, that's all for now.": "You're welcome! Have a great day.",
    "Thank you, that was helpful.": "Glad I could help!",
    "Thanks a lot!": "You're welcome!",
    "Bye for now.": "Goodbye! Talk to you soon.",
}
SHIFTED_FACTS = {
    "whats the difference between a stock and a bond": "A stock is a share of a company; a bond is a loan to a "
                                                        "company or government that pays interest.",
    "is it rude to email someone on a sunday": "Not really, as long as you don't expect an answer before Monday.",
    "why do clocks change in spring": "Daylight saving time moves clocks forward to make better use of evening "
                                      "daylight.",
    "explain gravity like i'm five": "Gravity is the pull that makes things fall down and keeps us on the ground.",
    "how many ounces in a pound": "There are 16 ounces in a pound.",
    "whats the point of a support ticket system": "It keeps every customer problem in one place so that none is "
                                                  "forgotten and each has an owner.",
}
SHIFTED_SOCIAL = {
    "ty, ur a lifesaver": "Happy to help!",
    "heyyy": "Hey! What can I do for you?",
    "nvm, all good now": "Great, glad it's sorted!",
    "cool cool, cya": "See you!",
}

# --- templates ---------------------------------------------------------------------------------------

TEMPLATES: dict[str, tuple[str, ...]] = {
    "get_weather": ("What's the weather like in {city} right now{unit}?", "Tell me the weather in {city}{unit}.",
                    "How warm is it in {city} today{unit}?", "Weather for {city}{unit}, please.",
                    "Is it raining in {city} at the moment{unit}?"),
    "send_email": ("Email {to} with subject '{subject}' and say '{body}'.",
                   "Send {to} an email titled '{subject}' saying '{body}'.",
                   "Please write to {to}. Subject: {subject}. Message: {body}.",
                   "Could you email {to}? Use the subject \"{subject}\" and the text \"{body}\"."),
    "create_ticket": ("Open a {priority} priority ticket: {title}.",
                      "Please file a {priority} priority ticket titled '{title}'.",
                      "Create a support ticket '{title}' with {priority} priority.",
                      "Log a ticket for '{title}', priority {priority}."),
    "get_stock_price": ("What is {company}'s stock price? The ticker is {symbol}.", "How much is {symbol} trading at?",
                        "Get me the latest price for {symbol}.", "Quote {symbol} please.",
                        "What's the share price of {company} ({symbol})?"),
    "convert_currency": ("Convert {amount} {from_currency} to {to_currency}.",
                         "How much is {amount} {from_currency} in {to_currency}?",
                         "What's {amount} {from_currency} worth in {to_currency} today?",
                         "Change {amount} {from_currency} into {to_currency} for me."),
    "lookup_order": ("Where is my order {order_id}?", "Check the status of order number {order_id}.",
                     "Has order #{order_id} shipped yet?", "Look up order {order_id} for me."),
    "set_reminder": ("Remind me to {text} at {time}.", "Set a reminder for {time} to {text}.",
                     "At {time}, remind me to {text}.", "Please create a reminder: {text} at {time}."),
    "translate": ("Translate '{text}' into {language}.", "How do you say '{text}' in {language}?",
                  "Please translate \"{text}\" to {language}.", "What is '{text}' in {language}?"),
    "search_products": ("Find me {query}{price}.", "Search the catalogue for {query}{price}.",
                        "Do you sell {query}{price}?", "Show me {query}{price}."),
    "get_time": ("What time is it in {timezone}?", "Current time in the {timezone} time zone, please.",
                 "Tell me the local time for {timezone}.", "What's the time right now in {timezone}?"),
    "weather_pair": ("Compare the weather in {city} and {city2}.", "What's the weather in {city} and in {city2}?"),
    "stock_pair": ("What are {symbol} and {symbol2} trading at?", "Get me the prices of {symbol} and {symbol2}."),
    "capital": ("What is the capital of {country}?", "Which city is the capital of {country}?"),
    "multiply": ("What is {a} times {b}?", "Can you multiply {a} by {b}?"),
    "author": ("Who wrote {book}?",),
    "fact": tuple(FACTS),
    "social": tuple(SOCIAL),
}
SHIFTED_TEMPLATES: dict[str, tuple[str, ...]] = {
    "get_weather": ("do i need an umbrella in {city} rn{unit}", "{city} weather check{unit} pls",
                    "gonna be outside in {city} later, what's it like out there{unit}?"),
    "send_email": ("shoot a quick note to {to} re: {subject} -- body: {body}",
                   "mail {to}, heading \"{subject}\", content \"{body}\"",
                   "ping {to} by e-mail ({subject}): {body}"),
    "create_ticket": ("raise an issue ({priority}): {title}", "new bug report, severity {priority} -- \"{title}\"",
                      "can u put in a {priority} ticket about \"{title}\""),
    "get_stock_price": ("how's {stock} doing today", "{stock} price?? need it for a trade",
                        "check where {stock} is at on the market"),
    "convert_currency": ("if i've got {amount} {from_currency}, how many {to_currency} is that",
                         "{from_currency} -> {to_currency}, amount {amount}",
                         "exchange rate question: {amount} of my {from_currency} turned into {to_currency}?"),
    "lookup_order": ("tracking on purchase {order}??", "any news about ord-{order}",
                     "my package (order no. {order}) hasn't shown up"),
    "set_reminder": ("don't let me forget to {text}, ping me at {time}", "at {time} nudge me to {text}",
                     "need a heads-up at {time} so I {text}"),
    "translate": ("need \"{text}\" in {language} for a sign", "\"{text}\" -- {language} version pls",
                  "my pen pal only reads {language}; how would I write \"{text}\""),
    "search_products": ("hunting for {query}{price}", "got any {query}?{price}",
                        "looking to buy {query}{price}, what's in stock"),
    "get_time": ("what's the clock saying in {timezone} atm", "is it late in {timezone} right now? need the local hour",
                 "{timezone}: current hour?"),
    "weather_pair": ("which is warmer rn, {city} or {city2}", "{city} vs {city2} weather, go"),
    "stock_pair": ("{stock} vs {stock2} price check", "how are {stock} and {stock2} doing on the market"),
    "capital": ("yo what's {country}'s capital again", "capital city of {country}, remind me?"),
    "multiply": ("quick maths: {a} x {b}", "{a}*{b} = ?"),
    "author": ("who's the author of {book}, can't remember",),
    "fact": tuple(SHIFTED_FACTS),
    "social": tuple(SHIFTED_SOCIAL),
}
SHIFTED_UNIT_CLAUSES = {"fahrenheit": (" in °F", " (imperial units)"), "celsius": (" in °C", " (metric units)")}
PRICE_CLAUSES = (" under {p} dollars", " for at most {p} dollars")
SHIFTED_PRICE_CLAUSES = (", budget {p} bucks", " nothing over ${p}", " (max {p})")
PREFIXES = ("", "", "", "Hi! ", "Hello, ", "Hey, ")
SUFFIXES = ("", "", "", " Thanks!", " Thank you.")
SHIFTED_PREFIXES = ("", "", "ok so ", "quick one: ", "umm ")
SHIFTED_SUFFIXES = ("", "", " -- my boss is waiting", " (sorry, typing on my phone)", " thx", " asap")
NO_TOOL_KINDS = ("capital", "multiply", "author", "fact", "social")
NO_TOOL_WEIGHTS = (3, 3, 2, 2, 1)
FIXED_KINDS = ("fact", "social")  # whole questions with their own replies, no fields
QUIET_KINDS = ("social",)  # greetings and thanks: no greeting or trailing thanks added

# --- drawing slot values and gold --------------------------------------------------------------------


@dataclass(frozen=True)
class _Draw:
    slots: dict[str, Any]  # what the template's fields are filled with
    calls: tuple[Call, ...] = ()
    reply: str = ""


def _alias(rng: random.Random, table: Aliases, value: str) -> str:
    return rng.choice(table[value])


def _city(rng: random.Random, shifted: bool) -> tuple[str, str]:
    """(gold city, how the text names it)."""
    if shifted and rng.random() < 0.5:
        city = rng.choice(list(CITY_ALIASES))
        return city, _alias(rng, CITY_ALIASES, city)
    city = rng.choice(CITIES)
    return city, city.lower() if shifted and rng.random() < 0.5 else city


def _stock(rng: random.Random, shifted: bool) -> tuple[str, str]:
    """(gold ticker, how the text names it): the ticker in the main set; `aapl`, `$aapl` or `Apple` when shifted."""
    symbol = rng.choice(list(TICKERS))
    if not shifted:
        return symbol, symbol
    return symbol, rng.choice([symbol.lower(), "$" + symbol.lower(), TICKERS[symbol]])


def _weather(rng: random.Random, shifted: bool) -> _Draw:
    city, named = _city(rng, shifted)
    args: dict[str, Any] = {"city": city}
    unit = ""
    if rng.random() < 0.3:
        args["unit"] = rng.choice(list(UNIT_CLAUSES))
        unit = rng.choice((SHIFTED_UNIT_CLAUSES if shifted else UNIT_CLAUSES)[args["unit"]])
    return _Draw({"city": named, "unit": unit}, (("get_weather", args),))


def _email(rng: random.Random, shifted: bool) -> _Draw:
    to = f"{rng.choice(PEOPLE)}@{rng.choice(DOMAINS)}"
    subject, body = rng.choice(SUBJECTS), rng.choice(BODIES)
    return _Draw({"to": to, "subject": subject, "body": body},
                 (("send_email", {"to": to, "subject": subject, "body": body}),))


def _ticket(rng: random.Random, shifted: bool) -> _Draw:
    title, priority = rng.choice(TITLES), rng.choice(PRIORITIES)
    named = _alias(rng, PRIORITY_ALIASES, priority) if shifted else priority
    return _Draw({"title": title, "priority": named}, (("create_ticket", {"title": title, "priority": priority}),))


def _stock_price(rng: random.Random, shifted: bool) -> _Draw:
    symbol, named = _stock(rng, shifted)
    return _Draw({"symbol": symbol, "company": TICKERS[symbol], "stock": named},
                 (("get_stock_price", {"symbol": symbol}),))


def _currency(rng: random.Random, shifted: bool) -> _Draw:
    source, target = rng.sample(CURRENCIES, 2)
    amount: int | float
    if rng.random() < 0.3:
        amount = round(rng.uniform(1, 500), 2)
        written = f"{amount:.2f}"
    else:
        amount = rng.randint(5, 5000)
        written = f"{amount:,}" if shifted and amount >= 1000 else str(amount)

    def name(code: str) -> str:
        return rng.choice([code.lower(), *CURRENCY_NAMES[code]]) if shifted else code

    return _Draw({"amount": written, "from_currency": name(source), "to_currency": name(target)},
                 (("convert_currency", {"amount": amount, "from_currency": source, "to_currency": target}),))


def _order(rng: random.Random, shifted: bool) -> _Draw:
    order_id = rng.randint(10, 999999)
    written = f"{order_id:08d}" if shifted and rng.random() < 0.3 else str(order_id)
    return _Draw({"order_id": order_id, "order": written}, (("lookup_order", {"order_id": order_id}),))


def _reminder(rng: random.Random, shifted: bool) -> _Draw:
    task = rng.choice(TASKS)
    if shifted:
        time = rng.choice(list(SPOKEN_TIMES))
        written = _alias(rng, SPOKEN_TIMES, time)
    else:
        time = written = f"{rng.randint(6, 22):02d}:{rng.choice((0, 15, 30, 45)):02d}"
    return _Draw({"text": task, "time": written}, (("set_reminder", {"text": task, "time": time}),))


def _translate(rng: random.Random, shifted: bool) -> _Draw:
    phrase, language = rng.choice(PHRASES), rng.choice(LANGUAGES)
    named = _alias(rng, LANGUAGE_ALIASES, language) if shifted and rng.random() < 0.6 else language.capitalize()
    return _Draw({"text": phrase, "language": named},
                 (("translate", {"text": phrase, "target_language": language}),))


def _search(rng: random.Random, shifted: bool) -> _Draw:
    query = rng.choice(QUERIES)
    args: dict[str, Any] = {"query": query}
    price = ""
    if rng.random() < 0.4:
        args["max_price"] = rng.choice(PRICES)
        price = rng.choice(SHIFTED_PRICE_CLAUSES if shifted else PRICE_CLAUSES).format(p=args["max_price"])
    return _Draw({"query": query, "price": price}, (("search_products", args),))


def _time(rng: random.Random, shifted: bool) -> _Draw:
    zone = rng.choice(ZONES)
    return _Draw({"timezone": _alias(rng, ZONE_ALIASES, zone) if shifted else zone},
                 (("get_time", {"timezone": zone}),))


def _weather_pair(rng: random.Random, shifted: bool) -> _Draw:
    (one, named_one), (two, named_two) = _city(rng, shifted), _city(rng, shifted)
    while two == one:
        two, named_two = _city(rng, shifted)
    return _Draw({"city": named_one, "city2": named_two},
                 (("get_weather", {"city": one}), ("get_weather", {"city": two})))


def _stock_pair(rng: random.Random, shifted: bool) -> _Draw:
    (one, named_one), (two, named_two) = _stock(rng, shifted), _stock(rng, shifted)
    while two == one:
        two, named_two = _stock(rng, shifted)
    return _Draw({"symbol": one, "symbol2": two, "stock": named_one, "stock2": named_two},
                 (("get_stock_price", {"symbol": one}), ("get_stock_price", {"symbol": two})))


def _capital(rng: random.Random, shifted: bool) -> _Draw:
    country = rng.choice(list(COUNTRIES))
    return _Draw({"country": country}, reply=f"The capital of {country} is {COUNTRIES[country]}.")


def _multiply(rng: random.Random, shifted: bool) -> _Draw:
    a, b = rng.randint(2, 19), rng.randint(2, 19)
    return _Draw({"a": a, "b": b}, reply=f"{a} times {b} is {a * b}.")


def _author(rng: random.Random, shifted: bool) -> _Draw:
    book = rng.choice(list(BOOKS))
    return _Draw({"book": book}, reply=f"{book} was written by {BOOKS[book]}.")


DRAWS: dict[str, Callable[[random.Random, bool], _Draw]] = {
    "get_weather": _weather, "send_email": _email, "create_ticket": _ticket, "get_stock_price": _stock_price,
    "convert_currency": _currency, "lookup_order": _order, "set_reminder": _reminder, "translate": _translate,
    "search_products": _search, "get_time": _time, "weather_pair": _weather_pair, "stock_pair": _stock_pair,
    "capital": _capital, "multiply": _multiply, "author": _author,
}


def _typo(rng: random.Random, template: str) -> str:
    """Swap two letters in one of the template's own words (never in a field, so gold spans survive)."""
    words = template.split(" ")
    candidates = [i for i, w in enumerate(words) if len(w) > 3 and w.isalpha()]
    if not candidates:
        return template
    i = rng.choice(candidates)
    w = words[i]
    j = rng.randrange(len(w) - 1)
    words[i] = w[:j] + w[j + 1] + w[j] + w[j + 2:]
    return " ".join(words)


def _kind(rng: random.Random) -> str:
    roll = rng.random()
    if roll < 0.2:
        return rng.choices(NO_TOOL_KINDS, weights=NO_TOOL_WEIGHTS)[0]
    if roll < 0.27:
        return rng.choice(("weather_pair", "stock_pair"))
    return rng.choice([t.name for t in AGENT_TOOLS])


def _make(rng: random.Random, shifted: bool, index: int, kind: str) -> AgentRequest:
    templates = (SHIFTED_TEMPLATES if shifted else TEMPLATES)[kind]
    template = rng.choice(templates)
    if kind in FIXED_KINDS:
        replies = (SHIFTED_FACTS | SHIFTED_SOCIAL) if shifted else (FACTS | SOCIAL)
        draw = _Draw({}, reply=replies[template])
    else:
        draw = DRAWS[kind](rng, shifted)
    if shifted:
        for _ in range(rng.choice((0, 1, 2))):
            template = _typo(rng, template)
    text = template.format(**draw.slots)
    if kind not in QUIET_KINDS:
        prefix, suffix = rng.choice(SHIFTED_PREFIXES if shifted else PREFIXES), rng.choice(
            SHIFTED_SUFFIXES if shifted else SUFFIXES)
        if prefix.endswith(", ") and not template.startswith("{") and not shifted:
            text = text[0].lower() + text[1:]
        text = prefix + text + suffix
    if shifted and rng.random() < 0.2:
        text = text.lower()
    return AgentRequest(f"{'as' if shifted else 'a'}{index:04d}", text, draw.calls, draw.reply, shifted)


def _generate(n: int, seed: int, shifted: bool) -> list[AgentRequest]:
    rng = random.Random(seed)
    out: list[AgentRequest] = []
    seen: set[str] = set()
    kind = ""
    while len(out) < n:
        # A repeated text is drawn again (every text has one gold), of the same kind while that kind has
        # fresh texts left, so that the mix of kinds stays as drawn.
        for attempt in range(1000):
            kind = _kind(rng) if attempt % 50 == 0 else kind
            req = _make(rng, shifted, len(out), kind)
            if req.text not in seen:
                break
        else:
            raise ValueError(f"cannot draw {n} distinct requests")
        seen.add(req.text)
        out.append(req)
    return out


def generate_agent_requests(n: int = 400, seed: int = 23) -> list[AgentRequest]:
    """`n` distinct requests from the main templates."""
    return _generate(n, seed, shifted=False)


def generate_shifted_agent_requests(n: int = 100, seed: int = 29) -> list[AgentRequest]:
    """`n` distinct requests from the shifted templates, aliases and noise (never a main text)."""
    return _generate(n, seed, shifted=True)


# --- the contract and grading ------------------------------------------------------------------------


def agent_contract_output(tool_choice: str = "auto") -> dict[str, Any]:
    """The contract's `output` for a fleet file (`OutputSpec`): the agent's tools, plain text allowed."""
    return {"tools": [{"name": t.name, "description": t.description, "parameters": t.parameters}
                      for t in AGENT_TOOLS], "tool_choice": tool_choice}


def gold_answer(req: AgentRequest) -> str:
    """The gold in the form the router records answers: a JSON list of calls, else the reply text."""
    if not req.calls:
        return req.reply
    return json.dumps([{"name": name, "arguments": args} for name, args in req.calls], ensure_ascii=False)


def answer_calls(answer_text: str) -> list[Call] | None:
    """The calls in a recorded answer (`[{"name", "arguments"}, ...]`), or None when it is text."""
    recorded = recorded_calls(answer_text)
    if recorded is None:
        return None
    calls: list[Call] = []
    for name, args in recorded:
        if isinstance(args, str):  # the router keeps arguments that are not JSON as their text
            try:
                args = json.loads(args)
            except ValueError:
                args = {}
        calls.append((name, args if isinstance(args, dict) else {}))
    return calls


def score_answer(answer_text: str | None, req: AgentRequest) -> dict[str, bool]:
    """Grade a recorded answer against `req`'s gold.

    - `right_decision`: a tool was called exactly when one was needed;
    - `right_tool`: the called names are the gold names (as a multiset), or no call when none was needed;
    - `right_call`: the right tools with every gold argument equal (strings case-insensitively and
      trimmed, numbers by value; `tool_suite.call_matches`), matched as a set when there are several
      calls. Arguments beyond the gold are not graded. A text answer to a request that needs no tool
      counts as right: the text itself is not graded.

    No answer (None: a failure) is wrong on every count.
    """
    if answer_text is None:
        return {"right_call": False, "right_tool": False, "right_decision": False}
    calls = answer_calls(answer_text) or []
    needed = bool(req.calls)
    right_decision = needed == bool(calls)
    if not needed:
        return {"right_call": right_decision, "right_tool": right_decision, "right_decision": right_decision}
    right_tool = sorted(name for name, _ in calls) == sorted(name for name, _ in req.calls)
    remaining = list(calls)
    for name, args in req.calls:
        hit = next((c for c in remaining if call_matches(Expected(name, args), c[0], c[1])), None)
        if hit is None:
            break
        remaining.remove(hit)
    else:
        return {"right_call": not remaining, "right_tool": right_tool, "right_decision": right_decision}
    return {"right_call": False, "right_tool": right_tool, "right_decision": right_decision}

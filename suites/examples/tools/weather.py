"""Tool functions for the `tools` example suite. Deterministic: a replay must get the same results."""

FORECASTS = {"paris": ("sunny", 21), "rome": ("cloudy", 18)}


def get_weather(city: str, unit: str = "C") -> dict[str, object]:
    sky, celsius = FORECASTS.get(city.lower(), ("unknown", 0))
    temperature = celsius if unit == "C" else round(celsius * 9 / 5 + 32)
    return {"city": city, "sky": sky, "temperature": temperature, "unit": unit}

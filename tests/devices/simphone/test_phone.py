"""SimPhone: start states, determinism, input handling, navigation, variation, rendering."""

from __future__ import annotations

import numpy as np
import pytest

from distrl_jax.devices import actions as A
from distrl_jax.devices.simphone import catalog, content
from distrl_jax.devices.simphone.phone import SimPhone
from distrl_jax.devices.simphone.state import View
from distrl_jax.tasks.goals import Goal, Intent, Task


def _task(goal: Goal | None = None, horizon: int = 10) -> Task:
    return Task("test", goal, horizon=horizon)


def _tap_target(phone: SimPhone, target: str) -> np.ndarray:
    w = phone.screen().find(target=target)
    assert w is not None, f"no widget with target {target!r} on {phone.screen().name}"
    return phone.step(A.tap(*w.center))


def _installed_keys(phone: SimPhone) -> set[str]:
    return {catalog.app_key(n) for n in phone.state.installed}


SCRIPT = [
    A.swipe(0.8, 0.5, 0.25, 0.5),  # drawer
    A.tap(0.07, 0.5),  # drawer search field
    A.type_text("chr"),
    A.BACK,
    A.swipe(0.3, 0.5, 0.8, 0.5),  # close drawer
    A.tap(0.08, 0.5),  # launcher search bar
    A.type_text("weather"),
    A.ENTER,
    A.swipe(0.8, 0.5, 0.3, 0.5),
    A.tap(0.5, 0.5),
    A.HOME,
]


def test_reset_returns_home_screen_of_requested_size() -> None:
    phone = SimPhone(size=(96, 48), seed=1)
    img = phone.reset(_task())
    assert img.shape == (96, 48, 3) and img.dtype == np.uint8
    assert phone.screen().name == "launcher.home"
    assert not img.flags.writeable  # shared with the cache


def test_same_seed_same_actions_give_same_screens() -> None:
    runs = []
    for _ in range(2):
        phone = SimPhone(seed=7)
        shots = [phone.reset(_task(Goal.make(Intent.OPEN_APP, app="Clock")))]
        shots += [phone.step(a) for a in SCRIPT]
        runs.append((shots, phone.screen()))
    (a, sa), (b, sb) = runs
    assert all(np.array_equal(x, y) for x, y in zip(a, b, strict=True))
    assert sa == sb


def test_episodes_and_seeds_vary_layout_theme_and_results() -> None:
    phone = SimPhone(seed=3)
    layouts, themes = set(), set()
    for _ in range(12):
        phone.reset(_task())
        layouts.add(phone.state.layout)
        themes.add(phone.state.theme)
    assert len(layouts) == 12 and len(themes) >= 2
    counts = {len(content.products(seed, "costco.com", "logitech g910")) for seed in range(20)}
    firsts = {content.products(seed, "costco.com", "logitech g910")[0].name for seed in range(20)}
    assert len(counts) >= 3 and len(firsts) >= 3


def test_reset_seed_overrides_episode_seed() -> None:
    a, b = SimPhone(seed=1), SimPhone(seed=2)
    assert np.array_equal(a.reset(_task(), seed=99), b.reset(_task(), seed=99))
    assert not np.array_equal(a.reset(_task(), seed=5), b.reset(_task(), seed=6))


def test_start_state_follows_the_goal() -> None:
    phone = SimPhone(seed=0)
    for seed in range(10):
        phone.reset(_task(Goal.make(Intent.INSTALL_APP, app="Calendar")), seed=seed)
        assert "calendar" not in _installed_keys(phone)
        phone.reset(_task(Goal.make(Intent.OPEN_APP, app="Zorbo Notes")), seed=seed)
        assert "zorbo notes" in _installed_keys(phone)
        phone.reset(_task(Goal.make(Intent.APP_NOTIFICATIONS, app="Maps", state="off")), seed=seed)
        assert "maps" not in phone.state.notif_off
        phone.reset(_task(Goal.make(Intent.APP_NOTIFICATIONS, app="Maps", state="on")), seed=seed)
        assert "maps" in phone.state.notif_off
        phone.reset(_task(Goal.make(Intent.SET_ALARM, time="07:00")), seed=seed)
        assert not any(a.enabled and a.hhmm == "07:00" for a in phone.state.alarms)
        phone.reset(_task(Goal.make(Intent.SITE_VISIT, site="costco.com")), seed=seed)
        assert all(t.page.site != "costco.com" and not t.opened for t in phone.state.tabs)


def test_unseen_app_gets_an_icon_and_a_screen() -> None:
    phone = SimPhone(seed=0)
    phone.reset(_task(Goal.make(Intent.OPEN_APP, app="Zorbo Notes")))
    phone.step(A.swipe(0.8, 0.5, 0.25, 0.5))
    _tap_target(phone, "app:Zorbo Notes")
    assert phone.state.view.app == "zorbo notes"
    assert phone.screen().find(label="Zorbo Notes") is not None


def test_type_without_focus_is_invalid_and_changes_nothing() -> None:
    phone = SimPhone(seed=0)
    before = phone.reset(_task())
    after = phone.step(A.type_text("hello"))
    assert phone.last_effect.invalid and not phone.last_effect.changed
    assert "focused" in phone.last_effect.reason
    assert np.array_equal(before, after)


@pytest.mark.parametrize(
    "action",
    [
        A.parse_action("not an action at all"),
        A.invalid("garbage"),
        A.Action(A.ActionType.DUAL_POINT, (1.5, 0.2), (1.5, 0.2)),
        A.Action(A.ActionType.TYPE, text=""),
        "TAP 0.5 0.5",  # not even an Action
    ],
)
def test_invalid_actions_are_noops_never_crashes(action: object) -> None:
    phone = SimPhone(seed=0)
    before = phone.reset(_task())
    after = phone.step(action)  # type: ignore[arg-type]
    assert phone.last_effect.invalid and not phone.last_effect.changed
    assert np.array_equal(before, after)


def test_tap_on_nothing_is_a_valid_noop_and_status_actions_too() -> None:
    phone = SimPhone(seed=0)
    phone.reset(_task())
    empty = next(
        (y, x)
        for y in np.linspace(0.15, 0.75, 25)
        for x in np.linspace(0.02, 0.98, 25)
        if phone.screen().hit(y, x) is None
    )
    for a in (A.tap(*empty), A.COMPLETE, A.IMPOSSIBLE, A.ENTER):
        phone.step(a)
        assert not phone.last_effect.invalid and not phone.last_effect.changed


def test_keyboard_focus_type_back_home() -> None:
    phone = SimPhone(seed=0)
    phone.reset(_task())
    _tap_target(phone, "launcher.search")
    sc = phone.screen()
    assert sc.keyboard and phone.state.focus == "google.q"
    phone.step(A.type_text("pizza"))
    field = phone.screen().find(target="focus:google.q")
    assert field.label == "pizza" and field.focused and phone.last_effect.changed
    _tap_target(phone, "key:s")  # the on-screen keys type too
    assert phone.state.text == "pizzas"
    _tap_target(phone, "key:del")
    phone.step(A.BACK)  # hides the keyboard first
    assert not phone.screen().keyboard and phone.screen().name == "google.search"
    phone.step(A.BACK)  # then goes back
    assert phone.screen().name == "launcher.home"
    _tap_target(phone, "launcher.search")
    phone.step(A.type_text("pizza"))
    phone.step(A.ENTER)
    assert phone.screen().name == "google.serp" and phone.state.view.query == "pizza"
    phone.step(A.HOME)
    assert phone.screen().name == "launcher.home" and phone.state.back == ()


def test_focusing_a_filled_field_selects_it_so_type_replaces() -> None:
    phone = SimPhone(seed=0)
    phone.reset(_task())
    _tap_target(phone, "launcher.search")
    phone.step(A.type_text("first"))
    phone.step(A.ENTER)
    _tap_target(phone, "focus:google.q")
    assert phone.state.text == "first"
    phone.step(A.type_text("second"))
    phone.step(A.type_text(" query"))
    phone.step(A.ENTER)
    assert phone.state.view.query == "second query"


def test_swipes_open_drawer_and_shade_and_scroll() -> None:
    phone = SimPhone(seed=0)
    phone.reset(_task())
    phone.step(A.swipe(0.8, 0.5, 0.25, 0.5))
    assert phone.screen().name == "launcher.drawer"
    phone.step(A.swipe(0.3, 0.5, 0.8, 0.5))
    assert phone.screen().name == "launcher.home"
    phone.step(A.swipe(0.4, 0.5, 0.8, 0.5))
    assert phone.screen().name == "shade.shade"
    phone.step(A.swipe(0.8, 0.5, 0.3, 0.5))
    assert phone.screen().name == "launcher.home"
    # A pull from the status bar opens the shade from inside an app too.
    phone.step(A.swipe(0.8, 0.5, 0.25, 0.5))
    _tap_target(phone, "app:Settings")
    phone.step(A.swipe(0.01, 0.5, 0.6, 0.5))
    assert phone.screen().name == "shade.shade"
    phone.step(A.BACK)
    assert phone.screen().name == "settings.home"
    phone.step(A.swipe(0.8, 0.5, 0.3, 0.5))  # the settings list scrolls
    assert phone.state.scroll > 0 and phone.last_effect.changed


def test_launcher_pages_change_with_horizontal_swipes() -> None:
    phone = SimPhone(seed=0)
    for seed in range(50):
        phone.reset(_task(), seed=seed)
        if len(phone.state.layout.pages) > 1:
            break
    else:
        pytest.fail("no layout with two pages in 50 seeds")
    phone.step(A.swipe(0.5, 0.8, 0.5, 0.2))
    assert phone.state.view.index == 1 and phone.last_effect.changed
    phone.step(A.swipe(0.5, 0.2, 0.5, 0.8))
    assert phone.state.view.index == 0


@pytest.mark.parametrize(
    ("typed", "page", "site", "query"),
    [
        ("costco.com", "site", "costco.com", ""),
        ("https://www.BestBuy.com/", "site", "bestbuy.com", ""),
        ("shop.example-store.co.uk", "site", "shop.example-store.co.uk", ""),
        ("pizza near me", "serp", "", "pizza near me"),
    ],
)
def test_chrome_address_bar(typed: str, page: str, site: str, query: str) -> None:
    phone = SimPhone(seed=0)
    phone.reset(_task())
    phone.step(A.swipe(0.8, 0.5, 0.25, 0.5))
    _tap_target(phone, "app:Chrome")
    _tap_target(phone, "focus:chrome.omni")
    phone.step(A.type_text(typed))
    phone.step(A.ENTER)
    v = phone.state.view
    assert (v.app, v.page, v.site, v.query) == ("chrome", page, site, query)


def test_shopping_flow_on_an_unseen_site() -> None:
    phone = SimPhone(seed=4)
    phone.reset(_task())
    phone.step(A.swipe(0.8, 0.5, 0.25, 0.5))
    _tap_target(phone, "app:Chrome")
    _tap_target(phone, "focus:chrome.omni")
    phone.step(A.type_text("gadgetbarn.com"))
    phone.step(A.ENTER)
    assert phone.screen().find(label="Gadgetbarn") is not None
    _tap_target(phone, "focus:site.q")
    phone.step(A.type_text("razer kraken"))
    phone.step(A.ENTER)
    assert phone.screen().name == "chrome.site_results"
    first = phone.screen().find(target="site.product:0")
    assert (
        first.label == content.products(phone.state.seed, "gadgetbarn.com", "razer kraken")[0].name
    )
    phone.step(A.tap(*first.center))
    _tap_target(phone, "site.add")
    assert phone.state.cart == (first.label,)
    _tap_target(phone, "site.cart")
    assert phone.screen().name == "chrome.site_cart" and phone.screen().find(label=first.label)


def test_chrome_reopens_on_its_tab_and_new_tabs_are_marked() -> None:
    phone = SimPhone(seed=2)
    phone.reset(_task())
    phone.step(A.swipe(0.8, 0.5, 0.25, 0.5))
    _tap_target(phone, "app:Chrome")
    n = len(phone.state.tabs)
    _tap_target(phone, "chrome.menu")
    _tap_target(phone, "chrome.newtab:1")
    assert len(phone.state.tabs) == n + 1 and phone.state.current_tab.incognito
    assert phone.state.current_tab.opened and phone.screen().name == "chrome.ntp"
    phone.step(A.HOME)
    phone.step(A.swipe(0.8, 0.5, 0.25, 0.5))
    _tap_target(phone, "app:Chrome")
    assert phone.state.view == View("chrome", "ntp") and phone.state.current_tab.incognito


def test_different_screens_render_differently() -> None:
    phone = SimPhone(seed=0)
    seen = [phone.reset(_task())]
    seen.append(phone.step(A.swipe(0.8, 0.5, 0.25, 0.5)))
    seen.append(_tap_target(phone, "focus:drawer.q"))
    seen.append(phone.step(A.type_text("c")))
    seen.append(phone.step(A.type_text("a")))
    for i in range(len(seen)):
        for j in range(i + 1, len(seen)):
            assert not np.array_equal(seen[i], seen[j]), (i, j)


def test_latency_is_recorded_scaled_without_sleeping() -> None:
    from distrl_jax.devices.simphone.latency import LatencyModel

    model = LatencyModel()
    phone = SimPhone(seed=5, latency=model, time_scale=0.5, sleep=False)
    phone.reset(_task())
    expected = model.sampler(5)
    for _ in range(5):
        phone.step(A.tap(0.5, 0.5))
        assert phone.last_latency_s == pytest.approx(expected.next() * 0.5)
    assert SimPhone(seed=5).last_latency_s == 0.0


def test_bad_constructor_arguments_are_explained() -> None:
    with pytest.raises(ValueError, match="size"):
        SimPhone(size=(128,))  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="time_scale"):
        SimPhone(time_scale=-1.0)
    with pytest.raises(RuntimeError, match="reset"):
        SimPhone().step(A.BACK)


def test_google_results_link_to_a_named_site() -> None:
    phone = SimPhone(seed=6)
    phone.reset(_task())
    phone.step(A.swipe(0.8, 0.5, 0.25, 0.5))
    _tap_target(phone, "app:Chrome")
    _tap_target(phone, "focus:chrome.omni")
    phone.step(A.type_text("walmart"))
    phone.step(A.ENTER)
    assert phone.state.view.page == "serp"
    assert phone.screen().find(target="web.open:0").label == "Walmart - Official Site"
    _tap_target(phone, "web.open:0")
    assert (phone.state.view.page, phone.state.view.site) == ("site", "walmart.com")
    phone.step(A.BACK)
    _tap_target(phone, "web.open:1")  # other results open as articles
    assert phone.screen().name == "chrome.web"


def test_typed_newline_submits_like_adb_input_text() -> None:
    phone = SimPhone(seed=0)
    phone.reset(_task())
    _tap_target(phone, "launcher.search")
    phone.step(A.type_text("pizza\n"))
    assert phone.screen().name == "google.serp" and phone.state.view.query == "pizza"

from paytime_app import routes
from paytime_app.models.users import Role


def hrefs(role):
    return [link.href for link in routes.navigation_for(role)]


def test_navigation_anonymous_sees_only_public_pages():
    assert hrefs(None) == [routes.EVENTS]


def test_navigation_customer_sees_personal_pages_but_no_staff_pages():
    links = hrefs(Role.CUSTOMER)
    assert routes.WALLET in links
    assert routes.ADMIN_PAYMENTS not in links
    assert routes.ORGANIZER not in links


def test_navigation_role_specific_pages():
    assert routes.ORGANIZER in hrefs(Role.SELLER)
    assert routes.CHECK_IN in hrefs(Role.MANAGER)
    assert routes.ADMIN_PAYMENTS in hrefs(Role.VIEWER)
    assert routes.ADMIN_USERS not in hrefs(Role.VIEWER)
    assert routes.ADMIN_USERS in hrefs(Role.ADMIN)
    assert routes.ADMIN_USERS in hrefs(Role.SUPER_ADMIN)

//! Integration tests of the web pages: page-level HTTP tests (who may see which page, CSRF,
//! cookies, a guard's gates, validation) and browser tests in a real headless Chromium against
//! a real central server and gates on simulated devices.

mod support;

mod admin;
mod admin_forms;
mod admin_pages;
mod admin_support;
mod alarm_delivery;
mod alarm_loop;
mod booth_context;
mod browser;
mod console_booth;
mod console_camera;
mod console_flows;
mod console_lanes;
mod console_layout;
mod console_webhook;
mod lane_display;
mod pages;
mod pass_page;
mod plain_chinese;
mod self_booking;
mod shift_paper;

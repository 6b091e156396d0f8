// renkou console: the little it needs beyond htmx. No inline script anywhere (the CSP forbids it).
document.addEventListener("DOMContentLoaded", () => {
  // An identity provider's answer (response_mode=form_post) goes on to the console without a click.
  for (const form of document.querySelectorAll("form[data-autosubmit]")) {
    form.submit();
  }
});

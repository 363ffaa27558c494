// The dashboards' charts (ECharts), drawn from the JSON block #dashboard-data the page carries.
(function () {
  "use strict";
  if (!window.echarts) { return; }
  var data = JSON.parse(document.getElementById("dashboard-data").textContent);
  var colors = {draft: "#9aa5b1", waiting: "#e0b24f", approved: "#1b7f3b", returned: "#b3261e", rejected: "#b3261e", expired: "#cbd2d9"};
  var charts = [];
  function draw(id, option) {
    var el = document.getElementById(id);
    if (!el) { return; }
    var chart = echarts.init(el);
    chart.setOption(option);
    charts.push(chart);
  }
  draw("chart-status", {
    tooltip: {trigger: "item"}, legend: {bottom: 0},
    series: [{type: "pie", radius: ["35%", "65%"], data: data.status.labels.map(function (label, i) {
      return {name: label, value: data.status.values[i], itemStyle: colors[data.status.meanings[i]] ? {color: colors[data.status.meanings[i]]} : undefined};
    })}]
  });
  var stack = [["通过", "approved"], ["处理中", "pending"], ["未通过", "rejected"], ["未提交及其他", "other"]];
  draw("chart-certificates", {
    tooltip: {trigger: "axis", axisPointer: {type: "shadow"}}, legend: {top: 0},
    grid: {left: 10, right: 20, top: 30, bottom: 10, containLabel: true},
    xAxis: {type: "value", minInterval: 1},
    yAxis: {type: "category", inverse: true, data: data.certificates.labels,
            axisLabel: {width: 260, overflow: "truncate"}},
    series: stack.map(function (s) {
      return {name: s[0], type: "bar", stack: "total", data: data.certificates[s[1]],
              itemStyle: colors[s[0]] ? {color: colors[s[0]]} : {color: "#7b8794"}};
    })
  });
  draw("chart-groups", {
    title: {text: data.groups.title, textStyle: {fontSize: 14}}, tooltip: {trigger: "axis"},
    grid: {left: 10, right: 20, top: 40, bottom: 10, containLabel: true},
    xAxis: {type: "category", data: data.groups.labels, axisLabel: {interval: 0, rotate: data.groups.labels.length > 8 ? 40 : 0}},
    yAxis: {type: "value", minInterval: 1},
    series: [{type: "bar", barMaxWidth: 48, data: data.groups.values, itemStyle: {color: "#0b5cad"}}]
  });
  window.addEventListener("resize", function () { charts.forEach(function (c) { c.resize(); }); });
})();
